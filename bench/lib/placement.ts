import { run, which } from './proc.js';

/**
 * Flags the run's folder as a top of hierarchy for ext4's inode allocator (`chattr +T`), so each
 * server's folder made in it starts in a block group of its own with many free inodes, instead of
 * next to /tmp's, which every test run fills and empties. Here the root file system is ext4
 * without a journal, and there creating a file skips, one by one, every inode deleted in the
 * last minute or more (`recently_deleted` in `find_inode_bit`; seen with perf): 20 µs a create in a
 * fresh group, 0.1-1.9 ms in one where thousands of files were just removed. Which server's folder
 * landed where decided the small-file rows (Apache's 4 KiB PUTs ran at 704-1,042 files/s from one
 * run to the next). Every server gets the same treatment; where the flag cannot be set the run goes
 * on as before and says so.
 */
export async function spreadServerFolders(dir: string): Promise<string> {
  const chattr = which('chattr');
  if (!chattr) return 'as the file system places it (chattr missing: apt-get install e2fsprogs)';
  const r = await run(chattr, ['+T', dir], { timeoutMs: 10_000 });
  return r.code === 0 ? 'each server folder in a block group of its own (chattr +T on the run folder)' : `as the file system places it (chattr +T failed: ${r.stderr.trim().slice(0, 120)})`;
}
