"""Given-name equivalence groups: nicknames, diminutives and cross-language forms.

Rule: data only, plus one lookup. Each group lists names that registration clerks write
for the same person (Bill for William, Peggy for Margaret, Hans for Johannes, Paco for
Francisco). Names are upper-case ASCII, as ``compare.normalise_name`` produces.
A name may sit in more than one group (ALEX: Alexander and Alexandra); two names are
equivalent when they share a group. Sources: common English hypocoristics (the lists
genealogists and the US Census name files use) and a few German, French and Spanish ones.
"""

from __future__ import annotations

from functools import cache

NICKNAME_GROUPS: tuple[tuple[str, ...], ...] = (
    # English, men
    ("ABRAHAM", "ABE", "BRAM"),
    ("ALBERT", "AL", "BERT", "BERTIE"),
    ("ALEXANDER", "ALEX", "ALEC", "SANDY", "XANDER", "ALEK", "SASHA"),
    ("ALFRED", "ALF", "ALFIE", "FRED"),
    ("ALLAN", "ALAN", "ALLEN", "AL"),
    ("ANDREW", "ANDY", "DREW", "ANDRE", "ANDREAS"),
    ("ANTHONY", "TONY", "ANTON", "ANTONIO", "ANTOINE"),
    ("ARCHIBALD", "ARCHIE", "ARCHY"),
    ("ARNOLD", "ARNIE", "ARNY"),
    ("ARTHUR", "ART", "ARTIE"),
    ("BARTHOLOMEW", "BART", "BARTH"),
    ("BENJAMIN", "BEN", "BENNY", "BENJI", "BENJY"),
    ("BERNARD", "BERNIE", "BARNEY", "BERND"),
    ("BRADLEY", "BRAD"),
    ("BRIAN", "BRYAN", "BRYON"),
    ("CALVIN", "CAL"),
    ("CHARLES", "CHARLIE", "CHUCK", "CHAS", "CHAZ", "CHARLEY", "CARL", "KARL", "CARLOS"),
    ("CHRISTOPHER", "CHRIS", "KIT", "TOPHER", "CHRISTOPH", "CHRISTOPHE", "CRISTOBAL"),
    ("CLIFFORD", "CLIFF"),
    ("CLINTON", "CLINT"),
    ("CURTIS", "CURT", "KURT"),
    ("DANIEL", "DAN", "DANNY"),
    ("DAVID", "DAVE", "DAVEY", "DAVY"),
    ("DENNIS", "DENNY", "DENIS"),
    ("DONALD", "DON", "DONNIE", "DONNY"),
    ("DOUGLAS", "DOUG"),
    ("EDWARD", "ED", "EDDIE", "EDDY", "TED", "TEDDY", "NED", "EDUARD", "EDUARDO", "EDOUARD"),
    ("EDMUND", "ED", "EDDIE", "NED", "TED", "EDMOND"),
    ("EDWIN", "ED", "EDDIE", "WIN"),
    ("EUGENE", "GENE"),
    ("FRANCIS", "FRANK", "FRANKIE", "FRAN", "FRANZ", "FRANCOIS", "FRANCISCO", "PACO", "PANCHO"),
    ("FRANKLIN", "FRANK", "FRANKIE"),
    ("FREDERICK", "FRED", "FREDDIE", "FREDDY", "FRITZ", "FRIEDRICH", "FREDERIC", "FEDERICO"),
    ("GABRIEL", "GABE", "GABY"),
    ("GEOFFREY", "JEFFREY", "JEFF", "GEOFF"),
    ("GEORGE", "GEORGIE", "GEORG", "JORGE", "GEORGES"),
    ("GERALD", "GERRY", "JERRY", "GERRIT"),
    ("GREGORY", "GREG", "GREGG"),
    ("HAROLD", "HAL", "HARRY"),
    ("HENRY", "HANK", "HARRY", "HAL", "HEINRICH", "HEINZ", "HENRI", "ENRIQUE", "KIKE"),
    ("HERBERT", "HERB", "BERT"),
    ("HOWARD", "HOWIE"),
    ("ISAAC", "IKE", "ZAC"),
    ("JACOB", "JAKE", "JAKOB", "JACQUES", "JAIME", "JACK"),
    ("JAMES", "JIM", "JIMMY", "JIMMIE", "JAMIE", "JEM", "DIEGO", "JAIME"),
    ("JEREMIAH", "JEREMY", "JERRY"),
    ("JOHN", "JACK", "JOHNNY", "JON", "JOHANN", "JOHANNES", "HANS", "JEAN", "JUAN", "IAN"),
    ("JONATHAN", "JON", "JONNY", "NATHAN"),
    ("JOSEPH", "JOE", "JOEY", "JOS", "JOSEF", "SEPP", "JOSE", "PEPE"),
    ("JOSHUA", "JOSH"),
    ("KENNETH", "KEN", "KENNY"),
    ("LAWRENCE", "LARRY", "LAURENCE", "LAURENT", "LORENZ", "LORENZO"),
    ("LEONARD", "LEN", "LENNY", "LEO", "LEON"),
    ("LOUIS", "LOU", "LOUIE", "LUDWIG", "LUIS", "LEWIS"),
    ("MATTHEW", "MATT", "MATTY", "MATTHIAS", "MATHIAS", "MATHIEU", "MATEO"),
    ("MICHAEL", "MIKE", "MICKEY", "MICK", "MIKEY", "MICHEL", "MIGUEL", "MICHI"),
    ("MITCHELL", "MITCH"),
    ("NATHANIEL", "NATE", "NAT", "NATHAN"),
    ("NICHOLAS", "NICK", "NICKY", "NICO", "NIKOLAUS", "KLAUS", "CLAUS", "NICOLAS"),
    ("OLIVER", "OLLIE", "OLLY"),
    ("PATRICK", "PAT", "PADDY", "RICK"),
    ("PETER", "PETE", "PIERRE", "PEDRO", "PIET"),
    ("PHILIP", "PHIL", "PHILLIP", "PHILIPP", "PHILIPPE", "FELIPE", "PIP"),
    ("RAYMOND", "RAY"),
    ("RICHARD", "RICK", "RICKY", "DICK", "RICH", "RICHIE", "RICO", "RICARDO"),
    ("ROBERT", "BOB", "BOBBY", "ROB", "ROBBIE", "BERT", "ROBIN", "ROBERTO", "BERTO"),
    ("RODNEY", "ROD"),
    ("RONALD", "RON", "RONNIE", "RONNY"),
    ("RUSSELL", "RUSS", "RUSTY"),
    ("SAMUEL", "SAM", "SAMMY"),
    ("STANLEY", "STAN"),
    ("STEPHEN", "STEVEN", "STEVE", "STEVIE", "STEFAN", "STEPHAN", "ETIENNE", "ESTEBAN"),
    ("THEODORE", "TED", "TEDDY", "THEO"),
    ("THOMAS", "TOM", "TOMMY", "THOM", "TOMAS"),
    ("TIMOTHY", "TIM", "TIMMY"),
    ("VINCENT", "VINCE", "VINNY", "VINNIE"),
    ("WALTER", "WALT", "WALLY"),
    ("WILLIAM", "BILL", "BILLY", "WILL", "WILLIE", "WILLY", "LIAM", "WILHELM", "GUILLERMO"),
    ("ZACHARY", "ZACH", "ZACK", "ZAK"),
    # English, women
    ("ABIGAIL", "ABBY", "ABBIE", "GAIL"),
    ("ALEXANDRA", "ALEX", "ALEXA", "SANDRA", "SANDY", "LEXIE", "ALEXANDRIA"),
    ("ALICE", "ALLIE", "ALI", "ALICIA", "ALISON", "ALLISON"),
    ("AMANDA", "MANDY", "MANDA"),
    ("ANN", "ANNE", "ANNA", "ANNIE", "NAN", "NANCY", "HANNAH", "ANNETTE"),
    ("BARBARA", "BARB", "BARBIE", "BABS"),
    ("BEATRICE", "BEA", "TRIXIE", "BEATRIX", "BEATRIZ"),
    ("CAROLINE", "CAROL", "CARRIE", "CARO", "CAROLYN", "CAROLINA", "KAROLINE"),
    ("CATHERINE", "KATHERINE", "KATHRYN", "CATHY", "KATHY", "KATE", "KATIE", "KAT",
     "KITTY", "KAY", "KATHARINA", "KATRIN", "KATJA", "CATALINA", "CATHERIN", "KAREN"),
    ("CHRISTINA", "CHRISTINE", "CHRIS", "CHRISSY", "TINA", "KRISTINA", "KRISTIN", "KIRSTEN",
     "CRISTINA"),
    ("CYNTHIA", "CINDY"),
    ("DEBORAH", "DEBRA", "DEB", "DEBBIE", "DEBBY"),
    ("DIANA", "DIANE", "DI", "DIANNE"),
    ("DOROTHY", "DOT", "DOTTY", "DOLLY", "DOROTHEA", "DORA"),
    ("ELEANOR", "ELLIE", "NELL", "NELLIE", "NORA", "ELENA", "ELEONORE", "LEONOR"),
    ("ELIZABETH", "LIZ", "LIZZIE", "BETH", "BETTY", "BETSY", "BESS", "BESSIE", "LIBBY",
     "ELIZA", "LISA", "ELISABETH", "ELSA", "ELSE", "LIESEL", "ISABEL", "ISABELLE",
     "ISABELLA", "ELISA", "BABETTE", "BETTINA", "LISETTE"),
    ("EMILY", "EM", "EMMY", "EMILIE", "EMILIA", "MILLIE"),
    ("EMMA", "EM", "EMMY"),
    ("FRANCES", "FRAN", "FRANNIE", "FANNY", "FRANCINE", "FRANCOISE", "FRANZISKA",
     "FRANCISCA", "PAQUITA"),
    ("GERTRUDE", "GERTIE", "TRUDY", "TRUDE"),
    ("HELEN", "HELENE", "ELLEN", "NELL", "LENA", "HELENA", "ELENA"),
    ("JACQUELINE", "JACKIE", "JACKY", "JACQUI"),
    ("JANE", "JANET", "JANIE", "JEAN", "JEANNE", "JENNY", "JOAN", "JOANNE", "JOHANNA",
     "JANINE", "JUANA"),
    ("JENNIFER", "JEN", "JENNY", "JENNI", "JENN"),
    ("JESSICA", "JESS", "JESSIE", "JESSY"),
    ("JOSEPHINE", "JOSIE", "JO", "JOSEFINE", "JOSEFA", "PEPA", "FINA"),
    ("JUDITH", "JUDY", "JUDI", "JUDE"),
    ("JULIA", "JULIE", "JULES", "JULIANNE", "JULIETTE", "JULIANA"),
    ("KIMBERLY", "KIM", "KIMMY", "KIMBERLEY"),
    ("LAURA", "LAURIE", "LORI", "LAUREN"),
    ("LILLIAN", "LILY", "LILLY", "LIL"),
    ("LOUISE", "LOUISA", "LOU", "LULU", "LUISE", "LUISA"),
    ("MARGARET", "PEGGY", "MAGGIE", "MEG", "MEGAN", "MARGE", "MARGIE", "MADGE", "GRETA",
     "GRETCHEN", "MARGARETE", "MARGRET", "MARGOT", "MARGUERITE", "MARGARITA", "RITA",
     "DAISY", "MAISIE", "PEG", "GRETE"),
    ("MARY", "MARIE", "MARIA", "MOLLY", "POLLY", "MAMIE", "MAE", "MAY", "MIA", "MITZI",
     "MARIAM", "MIRIAM", "MARIANNE", "MARION", "MAUREEN", "MARILYN"),
    ("MATILDA", "MATTIE", "TILLY", "MATHILDE", "MAUD", "MAUDE"),
    ("MELISSA", "MEL", "MISSY", "LISSA"),
    ("NANCY", "NAN", "ANN"),
    ("NATALIE", "NAT", "NATALIA", "NATASHA", "TASHA", "NATHALIE"),
    ("PAMELA", "PAM", "PAMMY"),
    ("PATRICIA", "PAT", "PATTY", "PATSY", "TRISH", "TRICIA", "PATTI", "TRISHA"),
    ("PRISCILLA", "CILLA", "PRISSY"),
    ("REBECCA", "BECKY", "BECCA", "BECK", "REBEKKA"),
    ("ROSEMARY", "ROSE", "ROSIE", "ROSA", "ROSMARIE", "ROSALIE", "ROSALIND"),
    ("SAMANTHA", "SAM", "SAMMY", "SAMMIE"),
    ("SARAH", "SARA", "SALLY", "SADIE", "SARITA"),
    ("SOPHIA", "SOPHIE", "SOFIA", "SOFIE"),
    ("STEPHANIE", "STEPH", "STEFFI", "STEFANIE", "ESTEFANIA"),
    ("SUSAN", "SUE", "SUSIE", "SUZY", "SUZANNE", "SUSANNE", "SUSANNA", "SUSANA", "SUZETTE"),
    ("TERESA", "THERESA", "TERRI", "TERRY", "TESS", "TESSA", "TESSIE", "THERESE", "RESI"),
    ("VALERIE", "VAL", "VALERIA"),
    ("VERONICA", "RONNIE", "VERA", "VRONI", "VERONIKA", "VERONIQUE"),
    ("VICTORIA", "VICKY", "VICKIE", "TORI", "VIKTORIA"),
    ("VIRGINIA", "GINNY", "GINGER", "VIRGIE"),
    ("WILHELMINA", "MINA", "WILMA", "MINNIE", "BILLIE", "HELMA"),
    ("WINIFRED", "WINNIE", "FREDA", "FRIEDA"),
    # German
    ("ALOIS", "LOISL"),
    ("GOTTFRIED", "FRIEDEL", "GOTTI"),
    ("JOACHIM", "ACHIM", "JOCHEN"),
    ("JUERGEN", "JURGEN", "JORG", "JOERG"),
    ("KONRAD", "CONRAD", "KONNI", "KURT"),
    ("LEOPOLD", "POLDI", "LEO"),
    ("ULRICH", "ULI", "ULLI", "ULRIKE"),
    ("WOLFGANG", "WOLF", "WOLFI"),
    ("DIETRICH", "DIETER", "DIRK", "THEO"),
    ("GUENTHER", "GUNTHER", "GUNTER", "GUENTER"),
    ("BURKHARD", "BURKHART", "BURGHARD"),
    ("KAETHE", "KATHE", "KATHARINA"),
    ("ANNELIESE", "ANNELIES", "LIESE"),
    # French
    ("GUILLAUME", "GUILLOT", "WILLIAM"),
    ("AMELIE", "AMELIA", "MELIE"),
    ("HUGUES", "HUGO", "HUGH", "HUGHIE"),
    ("MAXIMILIEN", "MAXIMILIAN", "MAX", "MAXIME", "MAXI"),
    ("DOMINIQUE", "DOMINIC", "DOMINIK", "DOM", "DOMINGO"),
    ("GENEVIEVE", "GENEVA", "GINETTE"),
    ("ANTOINETTE", "TONI", "NETTE", "ANTONIA", "TONIA"),
    # Spanish
    ("GUADALUPE", "LUPE", "LUPITA"),
    ("CONCEPCION", "CONCHA", "CONCHITA"),
    ("DOLORES", "LOLA", "LOLITA", "LOLI"),
    ("MERCEDES", "MERCHE", "MECHE"),
    ("MANUEL", "MANOLO", "MANU", "EMMANUEL", "IMMANUEL"),
    ("IGNACIO", "NACHO", "IGNAZ", "IGNACE"),
    ("ALEJANDRO", "ALEJO", "ALEX", "JANDRO"),
    ("RAFAEL", "RAFA", "RAPHAEL", "RAFI"),
    ("ROSARIO", "CHARO", "CHAYO"),
    ("GUILLERMINA", "MINA", "GUILLE"),
    ("JESUS", "CHUY", "CHUCHO"),
    ("ENCARNACION", "ENCARNA", "CHON"),
)


@cache
def _groups_of() -> dict[str, frozenset[int]]:
    """Name -> indexes of the groups it belongs to, built once."""
    table: dict[str, set[int]] = {}
    for index, group in enumerate(NICKNAME_GROUPS):
        for name in group:
            table.setdefault(name, set()).add(index)
    return {name: frozenset(groups) for name, groups in table.items()}


def nickname_groups(name: str) -> frozenset[int]:
    """The groups ``name`` belongs to (empty when it is not in the table)."""
    return _groups_of().get(name, frozenset())


def are_nicknames(a: str, b: str) -> bool:
    """True when two normalised given names are the same name in another form."""
    if not a or not b or a == b:
        return False
    groups = _groups_of()
    ga = groups.get(a)
    gb = groups.get(b)
    return ga is not None and gb is not None and not ga.isdisjoint(gb)


def canonical_given(name: str) -> str:
    """A stable representative of ``name``'s first group, for blocking keys.

    Names outside the table are their own representative. Several groups: the one with
    the smallest index, so both sides of a comparison pick the same one when they share it.
    """
    groups = _groups_of().get(name)
    if not groups:
        return name
    return NICKNAME_GROUPS[min(groups)][0]
