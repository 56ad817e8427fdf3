// Accord console: the little behaviour pages need, without inline script (CSP script-src 'self').
document.addEventListener("change", function (event) {
  var box = event.target;
  if (box && box.matches && box.matches("input[data-select-all]")) {
    document.querySelectorAll("input[name=" + box.getAttribute("data-select-all") + "]")
      .forEach(function (b) { b.checked = box.checked; });
  }
});
