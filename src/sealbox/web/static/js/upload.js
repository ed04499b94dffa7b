// The upload area: drag and drop or a picker, for files and whole folders (the tree is
// kept: each file is sent with its relative directory as the tus metadata "path", and the
// server makes the folders as the files complete). One row per file with a progress bar,
// percent, speed and time left, and a cancel button; with several files, a summary line
// (files and bytes done of the total). Uploads go over tus (tus.js), a few at a time.
import { TusUpload } from "./tus.js";

// Files sent at once: enough to keep the connection busy with small files, few enough
// that a folder of thousands does not open thousands of uploads (each one holds a
// pending-upload slot on the server until it completes).
const PARALLEL = 3;

function human(bytes) {
  const units = ["bytes", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${value} ${units[0]}` : `${value.toFixed(1)} ${units[unit]}`;
}

function duration(seconds) {
  if (!Number.isFinite(seconds)) return "";
  if (seconds < 60) return `${Math.ceil(seconds)} s left`;
  return `${Math.ceil(seconds / 60)} min left`;
}

function row(list, file, label) {
  const item = document.createElement("li");
  item.className = "upload";
  const name = document.createElement("span");
  name.className = "name";
  name.textContent = label;
  const bar = document.createElement("progress");
  bar.max = file.size || 1;
  bar.value = 0;
  bar.setAttribute("aria-label", `Upload of ${label}`);
  const status = document.createElement("span");
  status.className = "status";
  status.textContent = "waiting";
  const cancel = document.createElement("button");
  cancel.type = "button";
  cancel.className = "link";
  cancel.textContent = "Cancel";
  cancel.setAttribute("aria-label", `Cancel the upload of ${label}`);
  item.append(name, bar, status, cancel);
  list.append(item);
  return { item, bar, status, cancel };
}

// The directory part of a relative path ("photos/2024/a.jpg" -> "photos/2024").
function directoryOf(relative) {
  const parts = relative.split("/").filter(Boolean);
  parts.pop();
  return parts.join("/");
}

// Every file under the dropped entries, with its relative directory. Directories are read
// in batches (readEntries answers a part of a large directory at a time) until empty.
async function walk(entries) {
  const found = [];
  async function visit(entry) {
    if (entry.isFile) {
      const file = await new Promise((resolve, reject) => entry.file(resolve, reject));
      found.push({ file, path: directoryOf(entry.fullPath) });
    } else if (entry.isDirectory) {
      const reader = entry.createReader();
      for (;;) {
        const batch = await new Promise((resolve, reject) => reader.readEntries(resolve, reject));
        if (batch.length === 0) break;
        for (const child of batch) await visit(child);
      }
    }
  }
  for (const entry of entries) await visit(entry);
  return found;
}

export function attach(zone) {
  const endpoint = zone.dataset.uploadEndpoint;
  const folder = zone.dataset.folder || "";
  const inputs = zone.querySelectorAll('input[type="file"]');
  const list = zone.querySelector(".uploads");
  const summary = zone.querySelector(".upload-summary");
  const uploader = zone.querySelector("[data-uploader]");
  const queue = [];
  const totals = { files: 0, done: 0, failed: 0, bytes: 0, sent: 0 };
  let running = 0;

  function report() {
    if (!summary || totals.files < 2) return;
    summary.hidden = false;
    const failed = totals.failed ? `, ${totals.failed} failed` : "";
    summary.textContent =
      `${totals.done} of ${totals.files} files done${failed} · ` + `${human(totals.sent)} of ${human(totals.bytes)}`;
  }

  function finished() {
    if (running === 0 && queue.length === 0 && zone.dataset.afterUpload === "reload" && list.querySelector(".done")) {
      setTimeout(() => location.reload(), 800);
    }
  }

  async function send({ file, path }) {
    const label = path ? `${path}/${file.name}` : file.name;
    const view = row(list, file, label);
    const samples = [];
    let counted = 0; // bytes of this file already in totals.sent
    const metadata = {};
    if (uploader && uploader.value.trim()) metadata.uploader = uploader.value.trim();
    if (folder) metadata.folder = folder;
    if (path) metadata.path = path;
    const upload = new TusUpload(file, endpoint, {
      metadata,
      onProgress(sent, total) {
        totals.sent += sent - counted;
        counted = sent;
        report();
        const now = performance.now();
        samples.push([now, sent]);
        while (samples.length > 2 && now - samples[0][0] > 3000) samples.shift();
        const [then, before] = samples[0];
        const speed = now > then ? ((sent - before) * 1000) / (now - then) : 0;
        view.bar.value = sent;
        const percent = total ? Math.floor((sent * 100) / total) : 100;
        const left = speed > 0 ? duration((total - sent) / speed) : "";
        view.status.textContent = [`${percent}%`, speed > 0 ? `${human(speed)}/s` : "", left].filter(Boolean).join(" · ");
      },
    });
    view.cancel.addEventListener("click", async () => {
      await upload.cancel();
      view.status.textContent = "cancelled";
      view.cancel.remove();
    });
    try {
      await upload.start();
      totals.sent += file.size - counted;
      totals.done += 1;
      view.bar.value = view.bar.max;
      view.status.textContent = upload.resumed ? "done (resumed)" : "done";
      view.item.classList.add("done");
      view.cancel.remove();
    } catch (error) {
      totals.failed += 1;
      if (error.name !== "AbortError") {
        view.status.textContent = `failed: ${error.message}`;
        view.item.classList.add("failed");
      }
    }
    report();
  }

  async function worker() {
    running += 1;
    while (queue.length) await send(queue.shift());
    running -= 1;
    finished();
  }

  function sendAll(found) {
    for (const one of found) {
      queue.push(one);
      totals.files += 1;
      totals.bytes += one.file.size;
    }
    report();
    while (running < PARALLEL && queue.length) worker();
  }

  for (const input of inputs) {
    input.addEventListener("change", () => {
      // A folder chosen with webkitdirectory gives each file its path from that folder
      // ("chosen/sub/a.txt"); a plain pick gives none.
      sendAll([...input.files].map((file) => ({ file, path: directoryOf(file.webkitRelativePath || "") })));
      input.value = "";
    });
  }
  zone.addEventListener("dragover", (event) => {
    event.preventDefault();
    zone.classList.add("over");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", async (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    // The entries must be taken while the event runs: the browser empties the list after.
    const items = [...(event.dataTransfer.items || [])];
    const entries = items.map((item) => (item.webkitGetAsEntry ? item.webkitGetAsEntry() : null));
    if (entries.length && entries.every(Boolean)) {
      sendAll(await walk(entries));
    } else {
      sendAll([...event.dataTransfer.files].map((file) => ({ file, path: "" })));
    }
  });
}
