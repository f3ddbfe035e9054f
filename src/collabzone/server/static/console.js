// Optional: show every <time> in the viewer's own time zone, to the second. Without this
// script the console reads the same, in UTC.
document.querySelectorAll("time[datetime]").forEach((node) => {
  const at = new Date(node.getAttribute("datetime"));
  if (Number.isNaN(at.getTime())) return;
  const pad = (n) => String(n).padStart(2, "0");
  const offset = -at.getTimezoneOffset();
  const zone = "UTC" + (offset >= 0 ? "+" : "-") + pad(Math.floor(Math.abs(offset) / 60)) +
    ":" + pad(Math.abs(offset) % 60);
  node.title = node.textContent;
  node.textContent = `${at.getFullYear()}-${pad(at.getMonth() + 1)}-${pad(at.getDate())} ` +
    `${pad(at.getHours())}:${pad(at.getMinutes())}:${pad(at.getSeconds())} ${zone}`;
});
