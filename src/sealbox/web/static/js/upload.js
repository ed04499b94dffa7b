// The upload area: drag and drop or a file picker, one row per file with a progress bar,
// percent, speed and time left, and a cancel button. Uploads go over tus (tus.js).
import { TusUpload } from "./tus.js";

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

function row(list, file) {
  const item = document.createElement("li");
  item.className = "upload";
  const name = document.createElement("span");
  name.className = "name";
  name.textContent = file.name;
  const bar = document.createElement("progress");
  bar.max = file.size || 1;
  bar.value = 0;
  bar.setAttribute("aria-label", `Upload of ${file.name}`);
  const status = document.createElement("span");
  status.className = "status";
  status.textContent = "waiting";
  const cancel = document.createElement("button");
  cancel.type = "button";
  cancel.className = "link";
  cancel.textContent = "Cancel";
  cancel.setAttribute("aria-label", `Cancel the upload of ${file.name}`);
  item.append(name, bar, status, cancel);
  list.append(item);
  return { item, bar, status, cancel };
}

export function attach(zone) {
  const endpoint = zone.dataset.uploadEndpoint;
  const input = zone.querySelector('input[type="file"]');
  const list = zone.querySelector(".uploads");
  const uploader = zone.querySelector("[data-uploader]");
  let running = 0;

  async function send(file) {
    const view = row(list, file);
    const samples = [];
    const metadata = uploader && uploader.value.trim() ? { uploader: uploader.value.trim() } : {};
    const upload = new TusUpload(file, endpoint, {
      metadata,
      onProgress(sent, total) {
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
    running += 1;
    try {
      await upload.start();
      view.bar.value = view.bar.max;
      view.status.textContent = upload.resumed ? "done (resumed)" : "done";
      view.item.classList.add("done");
      view.cancel.remove();
    } catch (error) {
      if (error.name !== "AbortError") {
        view.status.textContent = `failed: ${error.message}`;
        view.item.classList.add("failed");
      }
    } finally {
      running -= 1;
      if (running === 0 && zone.dataset.afterUpload === "reload" && list.querySelector(".done")) {
        setTimeout(() => location.reload(), 800);
      }
    }
  }

  function sendAll(files) {
    for (const file of files) send(file);
  }

  input.addEventListener("change", () => {
    sendAll(input.files);
    input.value = "";
  });
  zone.addEventListener("dragover", (event) => {
    event.preventDefault();
    zone.classList.add("over");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    sendAll(event.dataTransfer.files);
  });
}
