// Resolves tags with tuf-js, the reference TypeScript TUF client, for
// signet's differential test (internal/difftest).
//
//   node resolve.mjs METADATA_URL ROOT_FILE TAG...
//
// Each tag gets a fresh Updater (an empty metadata directory holding only
// the pinned root), as a new machine would. It prints one JSON array:
// {tag, kind: "found"|"not signed"|"refused", sha256, length, error}.
import { mkdtempSync, copyFileSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Updater } from 'tuf-js';

const [metadataBaseUrl, rootFile, ...tags] = process.argv.slice(2);
if (!metadataBaseUrl || !rootFile) {
  console.error('usage: node resolve.mjs METADATA_URL ROOT_FILE TAG...');
  process.exit(2);
}

const out = [];
for (const tag of tags) {
  const dir = mkdtempSync(join(tmpdir(), 'tufjs-'));
  try {
    const metadataDir = join(dir, 'metadata');
    mkdirSync(metadataDir);
    copyFileSync(rootFile, join(metadataDir, 'root.json'));
    const updater = new Updater({
      metadataBaseUrl,
      metadataDir,
      targetDir: join(dir, 'targets'),
      config: { fetchRetries: 0 },
    });
    const info = await updater.getTargetInfo(tag);
    if (info === undefined) {
      out.push({ tag, kind: 'not signed' });
    } else {
      out.push({ tag, kind: 'found', sha256: info.hashes.sha256 ?? '', length: info.length });
    }
  } catch (err) {
    out.push({ tag, kind: 'refused', error: String(err?.message ?? err) });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
process.stdout.write(JSON.stringify(out) + '\n');
