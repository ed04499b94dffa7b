// Upload a file to a sealbox tus endpoint with tus-js-client, as a Node program.
//
//   node upload.mjs ENDPOINT TOKEN PATH stop    uploads about half, aborts, prints the upload URL
//   node upload.mjs ENDPOINT TOKEN PATH URL     resumes URL to the end, prints the new file's id
import { readFileSync } from "node:fs";
import { basename } from "node:path";
import { Upload } from "tus-js-client";

const [endpoint, token, path, mode] = process.argv.slice(2);
const file = readFileSync(path);
let fileId = null;

const upload = new Upload(file, {
  endpoint,
  uploadUrl: mode === "stop" ? null : mode,
  headers: { Authorization: `Bearer ${token}` },
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
    console.log(fileId);
  },
});

if (mode !== "stop") {
  console.error(`resuming ${mode}`);
}
upload.start();
