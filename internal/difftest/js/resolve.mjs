// Resolves tags with tuf-js, the reference TypeScript TUF client, for
// signet's differential test (internal/difftest).
//
//   node resolve.mjs
//
// reads one JSON request a line on stdin,
//   {"url": METADATA_BASE_URL, "root": PATH_OF_PINNED_ROOT_JSON, "tags": [TAG, ...]}
// and answers each with one JSON line on stdout, an array of
//   {"tag", "kind": "found"|"not signed"|"refused", "sha256", "length", "error"}.
// One process serves a whole test run: starting Node.js costs more than the
// resolutions.
import { mkdtempSync, copyFileSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Updater } from 'tuf-js';

// resolve answers for each tag with one fresh Updater (an empty metadata
// directory holding only the pinned root), as a new machine resolving
// several tags would: the top-level roles are loaded once, each tag's
// delegation walk loads (and verifies) the roles it reaches.
async function resolve(metadataBaseUrl, rootFile, tags) {
  const dir = mkdtempSync(join(tmpdir(), 'tufjs-'));
  try {
    const metadataDir = join(dir, 'metadata');
    mkdirSync(metadataDir);
    copyFileSync(rootFile, join(metadataDir, 'root.json'));
    let updater;
    try {
      updater = new Updater({
        metadataBaseUrl,
        metadataDir,
        targetDir: join(dir, 'targets'),
        config: { fetchRetries: 0 },
      });
      await updater.refresh();
    } catch (err) {
      return tags.map((tag) => refusal(tag, err));
    }
    const out = [];
    for (const tag of tags) {
      try {
        const info = await updater.getTargetInfo(tag);
        if (info === undefined) {
          out.push({ tag, kind: 'not signed' });
        } else {
          out.push({ tag, kind: 'found', sha256: info.hashes.sha256 ?? '', length: info.length });
        }
      } catch (err) {
        out.push(refusal(tag, err));
      }
    }
    return out;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function refusal(tag, err) {
  return { tag, kind: 'refused', error: String(err?.message ?? err) };
}

for await (const line of createInterface({ input: process.stdin })) {
  if (line.trim() === '') continue;
  const { url, root, tags } = JSON.parse(line);
  const out = await resolve(url, root, tags);
  process.stdout.write(JSON.stringify(out) + '\n');
}
