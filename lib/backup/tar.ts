/**
 * A minimal tar (ustar) writer: regular files only, names under 100 bytes. Enough to hand a directory of
 * archived WAL to `tar -x` on a host in one stream. Pure: buffers. Unit tested against GNU tar.
 */

const BLOCK = 512

function octal(n: number, width: number): string {
  return `${n.toString(8).padStart(width - 1, '0')}\0`
}

/** One file's header and its data padded to a 512-byte boundary. */
export function tarEntry(name: string, data: Buffer, mode = 0o600, mtime = 0): Buffer[] {
  if (Buffer.byteLength(name) >= 100 || name.includes('\0'))
    throw new RangeError(`tar entry names must be under 100 bytes: ${JSON.stringify(name)}`)
  const h = Buffer.alloc(BLOCK)
  h.write(name, 0, 'utf8')
  h.write(octal(mode, 8), 100)
  h.write(octal(0, 8), 108) // uid
  h.write(octal(0, 8), 116) // gid
  h.write(octal(data.length, 12), 124)
  h.write(octal(mtime, 12), 136)
  h.write('        ', 148) // the checksum counts as spaces while it is summed
  h.write('0', 156) // a regular file
  h.write('ustar\u000000', 257)
  let sum = 0
  for (const b of h) sum += b
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148)
  const pad = (BLOCK - (data.length % BLOCK)) % BLOCK
  return [h, data, Buffer.alloc(pad)]
}

/** The end of an archive: two zero blocks. */
export function tarEnd(): Buffer {
  return Buffer.alloc(2 * BLOCK)
}
