#!/usr/bin/env bash
# The repository stands alone: no tracked file names a path outside it, and no code, test
# or doc sends the reader to a document that is not in it (a briefing, a note, an issue
# number). Rules are stated where they apply, or in docs/. Third-party files (the HL7
# corpus, vendored static assets) are left out: their text is theirs.
set -u
cd "$(dirname "$0")/.."
status=0
outside=$(git grep -nE '\.\./shared|/work/|/home/[a-z]|/root/' -- . \
  ':!tests/corpus' ':!src/accord/web/static' ':!scripts/check-self-contained.sh')
if [ -n "$outside" ]; then
  echo "paths outside the repository:"; echo "$outside"; status=1
fi
cited=$(git grep -nE '\b(CONTRACT|DESIGN|STYLE|NOTES)(\.md)?\b|\b[Ii]ssue [0-9]+' -- \
  src tests bench docs scripts Makefile README.md \
  ':!tests/corpus' ':!src/accord/web/static' ':!scripts/check-self-contained.sh')
if [ -n "$cited" ]; then
  echo "citations of documents that are not in the repository:"; echo "$cited"; status=1
fi
exit $status
