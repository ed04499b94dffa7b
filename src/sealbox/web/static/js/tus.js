// A tus 1.0.0 client for the browser: creation, resumable PATCHes with upload progress,
// resume after a dropped connection (retries with back-off) or a page reload (the upload's
// address is kept in localStorage under its folder and path and the file's name, size and
// modification time).

const VERSION = "1.0.0";
// 64 MiB parts: measured to cost the server no more CPU per GiB than one raw upload
// (see docs/resumable.md, "Part size"); a Blob slice is read from disk as it is sent.
const CHUNK = 64 * 1024 * 1024;
const BACKOFF_MS = [500, 1000, 2000, 4000, 8000];

function encodeMetadata(metadata) {
  return Object.entries(metadata)
    .filter(([, value]) => value !== undefined && value !== null && value !== "")
    .map(([key, value]) => {
      const bytes = new TextEncoder().encode(String(value));
      let binary = "";
      for (const byte of bytes) binary += String.fromCharCode(byte);
      return `${key} ${btoa(binary)}`;
    })
    .join(",");
}

function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => {
      clearTimeout(timer);
      reject(new DOMException("cancelled", "AbortError"));
    });
  });
}

class HttpError extends Error {
  constructor(status, detail) {
    super(detail || `the server answered ${status}`);
    this.status = status;
  }
}

async function problem(response) {
  try {
    return (await response.json()).detail;
  } catch {
    return "";
  }
}

export class TusUpload {
  constructor(file, endpoint, { metadata = {}, onProgress = () => {}, chunkSize = CHUNK } = {}) {
    this.file = file;
    this.endpoint = endpoint;
    this.metadata = { filename: file.name, filetype: file.type, ...metadata };
    this.onProgress = onProgress;
    this.chunkSize = chunkSize;
    this.controller = new AbortController();
    this.url = null;
    this.fileId = null;
    this.resumed = false;
    // Where it goes is part of the key: two files of one name in two folders of a tree
    // are two uploads.
    const where = `${metadata.folder || ""}/${metadata.path || ""}`;
    this.key = `sealbox-tus:${endpoint}:${where}:${file.name}:${file.size}:${file.lastModified}`;
  }

  async start() {
    const signal = this.controller.signal;
    let offset = await this.#open();
    let failures = 0;
    // Done when every byte is stored (the server completes the file with the last one);
    // an upload through a link is never told the new file's id.
    while (offset < this.file.size) {
      try {
        offset = await this.#patch(offset);
        failures = 0;
      } catch (error) {
        if (signal.aborted) throw new DOMException("cancelled", "AbortError");
        if (error instanceof HttpError && ![409, 423, 500, 502, 503, 504].includes(error.status)) throw error;
        await sleep(BACKOFF_MS[Math.min(failures, BACKOFF_MS.length - 1)], signal);
        failures += 1;
        offset = await this.#offset().catch(() => offset);
      }
    }
    localStorage.removeItem(this.key);
    return this.fileId;
  }

  async cancel() {
    this.controller.abort();
    this.xhr?.abort();
    localStorage.removeItem(this.key);
    if (this.url) {
      await fetch(this.url, { method: "DELETE", headers: { "Tus-Resumable": VERSION } }).catch(() => {});
    }
  }

  async #open() {
    const saved = localStorage.getItem(this.key);
    if (saved) {
      this.url = saved;
      try {
        const offset = await this.#offset();
        this.resumed = true;
        this.onProgress(offset, this.file.size);
        return offset;
      } catch {
        localStorage.removeItem(this.key);
      }
    }
    const response = await fetch(this.endpoint, {
      method: "POST",
      headers: {
        "Tus-Resumable": VERSION,
        "Upload-Length": String(this.file.size),
        "Upload-Metadata": encodeMetadata(this.metadata),
      },
      signal: this.controller.signal,
    });
    if (response.status !== 201) throw new HttpError(response.status, await problem(response));
    this.url = new URL(response.headers.get("Location"), location.href).href;
    this.fileId = response.headers.get("Sealbox-File-Id");
    localStorage.setItem(this.key, this.url);
    return Number(response.headers.get("Upload-Offset") || 0);
  }

  async #offset() {
    const response = await fetch(this.url, {
      method: "HEAD",
      headers: { "Tus-Resumable": VERSION },
      cache: "no-store",
      signal: this.controller.signal,
    });
    if (response.status !== 200) throw new HttpError(response.status, "");
    return Number(response.headers.get("Upload-Offset"));
  }

  #patch(offset) {
    const body = this.file.slice(offset, Math.min(offset + this.chunkSize, this.file.size));
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      this.xhr = xhr;
      xhr.open("PATCH", this.url);
      xhr.setRequestHeader("Tus-Resumable", VERSION);
      xhr.setRequestHeader("Upload-Offset", String(offset));
      xhr.setRequestHeader("Content-Type", "application/offset+octet-stream");
      xhr.upload.onprogress = (event) => this.onProgress(offset + event.loaded, this.file.size);
      xhr.onload = () => {
        if (xhr.status !== 204) {
          let detail = "";
          try {
            detail = JSON.parse(xhr.responseText).detail;
          } catch {}
          reject(new HttpError(xhr.status, detail));
          return;
        }
        const next = Number(xhr.getResponseHeader("Upload-Offset"));
        this.fileId = xhr.getResponseHeader("Sealbox-File-Id");
        this.onProgress(next, this.file.size);
        resolve(next);
      };
      xhr.onerror = () => reject(new Error("the connection was lost"));
      xhr.onabort = () => reject(new DOMException("cancelled", "AbortError"));
      xhr.send(body);
    });
  }
}
