#!/usr/bin/env node
// `npm audit --omit=dev`, the production dependency tree only, as CI runs it (see docs/security.md).
//
// Fails (exit 1) when the registry reports an advisory against a production dependency that is
// not in ACCEPTED below (each one accepted must be justified in docs/security.md). When the audit
// endpoint cannot be reached (build machines whose registry mirror answers the bulk-advisory POST
// with 405), it says so and passes, unless OMNISEG_AUDIT_REQUIRED=1.
//
// Usage: node scripts/audit.mjs          OMNISEG_AUDIT_JSON=<file>: read that report instead of
//                                        running npm audit (to check this script's logic)
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** Advisories accepted for now (GitHub advisory URLs), each with its reason in docs/security.md. */
const ACCEPTED = new Set([]);

function report() {
  if (process.env.OMNISEG_AUDIT_JSON) return readFileSync(process.env.OMNISEG_AUDIT_JSON, 'utf8');
  try {
    return execFileSync('npm', ['audit', '--omit=dev', '--json'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  } catch (e) {
    return e.stdout ?? ''; // npm audit exits 1 when it finds something; the JSON is still on stdout
  }
}

let json;
try {
  json = JSON.parse(report());
} catch {
  json = { message: 'npm audit printed no JSON' };
}

if (json.metadata?.vulnerabilities === undefined) {
  const why = json.message ?? json.error?.summary ?? JSON.stringify(json).slice(0, 200);
  console.log(`audit: the registry's audit endpoint gave no report (${why}); nothing checked.`);
  process.exit(process.env.OMNISEG_AUDIT_REQUIRED === '1' ? 1 : 0);
}

const findings = [];
let accepted = 0;
for (const [name, v] of Object.entries(json.vulnerabilities ?? {})) {
  for (const via of v.via ?? []) {
    if (typeof via !== 'object') continue; // a package name: the advisory is listed under that package
    if (ACCEPTED.has(via.url)) accepted++;
    else findings.push(`${name} ${v.range ?? ''}: ${via.severity} ${via.title} (${via.url})`);
  }
}
const deps = json.metadata.dependencies?.prod ?? json.metadata.dependencies?.total ?? '?';
if (findings.length > 0) {
  console.error(`audit: ${findings.length} advisories against production dependencies:\n  ${findings.join('\n  ')}`);
  console.error('Update the dependency, or accept the advisory in scripts/audit.mjs with its reason in docs/security.md.');
  process.exit(1);
}
console.log(`audit: no unaccepted advisories in ${deps} production dependencies${accepted ? ` (${accepted} accepted)` : ''}.`);
