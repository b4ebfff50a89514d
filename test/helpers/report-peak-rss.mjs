// Preload (node --import) for test/hostile-bomb.test.ts: writes the process's peak RSS in MB to
// $OMNISEG_TEST_PEAK_RSS_FILE when it exits, so that a test can bound the CLI's memory.
import { writeFileSync } from 'node:fs';

process.on('exit', () => {
  const file = process.env.OMNISEG_TEST_PEAK_RSS_FILE;
  if (file) writeFileSync(file, String(Math.round(process.resourceUsage().maxRSS / 1024)));
});
