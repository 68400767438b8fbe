// tus-upload.mjs uploads one file to filehub with the real tus-js-client and
// prints one JSON line with the result. Driven by the Go tests
// (cmd/filehub/tus_e2e_test.go); configured by environment variables:
//
//   FILEHUB_URL    server base URL (http://127.0.0.1:PORT)
//   FILEHUB_KEY    API key (write scope)
//   FILE           path of the file to upload
//   CHUNK_SIZE     bytes per PATCH (default 5 MiB)
//   PARALLEL       parallelUploads (default 1: no concatenation)
//   UPLOAD_URL     resume this upload instead of creating one
//   URL_FILE       write the upload URL here as soon as it is known
//   NO_RETRY       "1": fail at the first error instead of retrying
//
// Output: {"ok":true,"url":…,"fileId":…,"deduplicated":…,"resumedFrom":…}
// or, on failure, {"ok":false,"error":…,"accepted":…} with exit code 3.
import { readFileSync, writeFileSync } from 'node:fs';
import { basename } from 'node:path';
import { Upload } from 'tus-js-client';

const env = process.env;
const data = readFileSync(env.FILE);
let fileId = '';
let deduplicated = '';
let accepted = 0;
let resumedFrom = -1;

const upload = new Upload(data, {
  endpoint: `${env.FILEHUB_URL}/v1/uploads/`,
  uploadUrl: env.UPLOAD_URL || null,
  chunkSize: Number(env.CHUNK_SIZE || 5 * 1024 * 1024),
  parallelUploads: Number(env.PARALLEL || 1),
  retryDelays: env.NO_RETRY === '1' ? null : [0, 200, 1000],
  headers: { Authorization: `Bearer ${env.FILEHUB_KEY}` },
  metadata: { filename: basename(env.FILE), filetype: 'application/octet-stream' },
  onUploadUrlAvailable() {
    if (env.URL_FILE) writeFileSync(env.URL_FILE, upload.url);
  },
  onChunkComplete(_size, bytesAccepted) {
    accepted = bytesAccepted;
    // One line per acknowledged offset, so the test knows what the
    // server has promised to keep.
    process.stderr.write(`accepted ${bytesAccepted}\n`);
  },
  onAfterResponse(req, res) {
    const id = res.getHeader('Filehub-File-Id');
    if (id) {
      fileId = id;
      deduplicated = res.getHeader('Filehub-Deduplicated');
    }
    if (req.getMethod() === 'HEAD' && resumedFrom < 0) {
      resumedFrom = Number(res.getHeader('Upload-Offset'));
    }
  },
  onError(err) {
    console.log(JSON.stringify({ ok: false, error: String(err), accepted }));
    process.exit(3);
  },
  onSuccess() {
    console.log(JSON.stringify({ ok: true, url: upload.url, fileId, deduplicated, resumedFrom }));
  },
});
upload.start();
