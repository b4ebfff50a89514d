// A shared object must hold every segment the loader maps from it: dlopen maps a truncated file
// (an interrupted download, a full disk) without complaint, and the first touch of a page past its
// end kills the process with SIGBUS. Checked before the addon is loaded, from its ELF headers.
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';

const PT_LOAD = 1;

/**
 * Throws when `file` is a 64-bit little-endian ELF file shorter than its headers and loadable
 * segments say it is; anything else (a missing file, not ELF) is left for the loader to report.
 * @throws Error `<file>: truncated (<size> bytes; its headers and loadable segments end at <n>)`
 */
export function assertElfComplete(file: string): void {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch {
    return;
  }
  try {
    const size = fstatSync(fd).size;
    const header = Buffer.alloc(64); // Elf64_Ehdr
    if (readSync(fd, header, 0, 64, 0) < 64 || header.readUInt32BE(0) !== 0x7f454c46) return;
    if (header[4] !== 2 || header[5] !== 1) return; // ELFCLASS64, ELFDATA2LSB only
    const phoff = Number(header.readBigUInt64LE(32));
    const phentsize = header.readUInt16LE(54);
    const phnum = header.readUInt16LE(56);
    const shoff = Number(header.readBigUInt64LE(40));
    // The program headers, and the section headers, which end the file as linkers write it.
    let need = Math.max(phoff + phentsize * phnum, shoff === 0 ? 0 : shoff + header.readUInt16LE(58) * header.readUInt16LE(60));
    if (need <= size && phentsize >= 56) {
      const table = Buffer.alloc(phentsize * phnum); // Elf64_Phdr[phnum]
      readSync(fd, table, 0, table.length, phoff);
      for (let i = 0; i < phnum; i++) {
        const entry = table.subarray(i * phentsize);
        if (entry.readUInt32LE(0) !== PT_LOAD) continue;
        need = Math.max(need, Number(entry.readBigUInt64LE(8)) + Number(entry.readBigUInt64LE(32))); // p_offset + p_filesz
      }
    }
    if (need > size) throw new Error(`${file}: truncated (${size} bytes; its headers and loadable segments end at ${need})`);
  } finally {
    closeSync(fd);
  }
}
