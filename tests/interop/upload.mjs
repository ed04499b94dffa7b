// Upload a file to a sealbox tus endpoint with tus-js-client, as a Node program.
//
//   node upload.mjs ENDPOINT TOKEN PATH stop    uploads about half, aborts, prints the upload URL
//   node upload.mjs ENDPOINT TOKEN PATH URL     resumes URL to the end, prints the new file's id
//   node upload.mjs ENDPOINT TOKEN PATH store:FILE
//                                                uploads with a URL store (fingerprints in FILE),
//                                                resuming what it remembers; prints JSON:
//                                                {"fileId", "url", "methods": [requests sent]}
import { readFileSync } from "node:fs";
import { basename } from "node:path";
import { FileUrlStorage, Upload } from "tus-js-client";

const [endpoint, token, path, mode] = process.argv.slice(2);
const file = readFileSync(path);
const stored = mode.startsWith("store:");
const methods = [];
let fileId = null;

const upload = new Upload(file, {
  endpoint,
  uploadUrl: mode === "stop" || stored ? null : mode,
  urlStorage: stored ? new FileUrlStorage(mode.slice("store:".length)) : undefined,
  storeFingerprintForResuming: stored,
  removeFingerprintOnSuccess: false,
  headers: { Authorization: `Bearer ${token}` },
  onBeforeRequest: (request) => {
    methods.push(request.getMethod());
  },
  chunkSize: 8 * 1024 * 1024,
  metadata: { filename: basename(path), filetype: "application/octet-stream" },
  retryDelays: [],
  onAfterResponse: (_request, response) => {
    fileId = response.getHeader("Sealbox-File-Id") || fileId;
  },
  onProgress: (sent, total) => {
    if (mode === "stop" && sent >= total / 2) {
      upload.abort().then(() => {
        console.log(upload.url);
        process.exit(0);
      });
    }
  },
  onError: (error) => {
    console.error(String(error));
    process.exit(1);
  },
  onSuccess: () => {
    console.log(stored ? JSON.stringify({ fileId, url: upload.url, methods }) : fileId);
  },
});

if (stored) {
  upload.findPreviousUploads().then((previous) => {
    if (previous.length > 0) {
      upload.resumeFromPreviousUpload(previous[0]);
    }
    upload.start();
  });
} else {
  if (mode !== "stop") {
    console.error(`resuming ${mode}`);
  }
  upload.start();
}
