// The message templates page: a live length and SMS-segment counter under each text (the same
// rule as sms/text.py: 160/153 characters in GSM-7, else 70/67). Variables count as written.
(function () {
  "use strict";
  var GSM7 = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZ" +
    "ÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà^{}\\[~]|€";

  function segments(text) {
    var gsm = true;
    for (var i = 0; i < text.length; i++) {
      if (GSM7.indexOf(text.charAt(i)) < 0) { gsm = false; break; }
    }
    var single = gsm ? 160 : 70, part = gsm ? 153 : 67;
    return text.length <= single ? 1 : Math.ceil(text.length / part);
  }

  function update(area) {
    var out = document.getElementById(area.getAttribute("data-counter"));
    if (!out) { return; }
    var text = area.value.trim();
    out.textContent = out.getAttribute("data-template-counter")
      .replace("{length}", String(Array.from(text).length))
      .replace("{segments}", String(segments(text)));
    out.setAttribute("data-length", String(Array.from(text).length));
    out.setAttribute("data-segments", String(segments(text)));
  }

  document.querySelectorAll("textarea[data-counter]").forEach(function (area) {
    area.addEventListener("input", function () { update(area); });
    update(area);
  });
})();
