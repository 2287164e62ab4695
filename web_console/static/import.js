// The import page's progress bar: poll the job until it finishes, then show the server's report.
(function () {
  "use strict";
  const section = document.getElementById("import-job");
  if (!section || section.dataset.state !== "running") return;
  const bar = document.getElementById("import-progress");
  const count = document.getElementById("import-count");
  const url = "/api/import/" + encodeURIComponent(section.dataset.job);
  async function poll() {
    try {
      const r = await fetch(url, { credentials: "same-origin", cache: "no-store" });
      if (r.ok) {
        const job = await r.json();
        bar.max = job.total || 1;
        bar.value = job.done;
        count.textContent = job.done + " / " + job.total;
        if (job.state !== "running") {
          window.location.reload();
          return;
        }
      }
    } catch (e) {
      // network hiccup: try again
    }
    setTimeout(poll, 400);
  }
  poll();
})();
