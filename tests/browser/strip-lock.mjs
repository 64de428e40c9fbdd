// Removes the "resolved" URLs from package-lock.json (no registry host name
// in the repository): npm ci then fetches from the configured registry and
// still checks each package against its "integrity" hash.
import { readFileSync, writeFileSync } from 'node:fs';
const path = new URL('./package-lock.json', import.meta.url);
const lock = JSON.parse(readFileSync(path, 'utf8'));
for (const p of Object.values(lock.packages || {})) delete p.resolved;
writeFileSync(path, JSON.stringify(lock, null, 2) + '\n');
