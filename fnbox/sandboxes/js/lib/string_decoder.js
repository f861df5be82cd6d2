// Node's `string_decoder` module: bytes to text across chunk boundaries.
(function (fnbox) {
  "use strict";
  const codec = fnbox.lib("codec");
  const { Buffer } = fnbox.lib("buffer");

  class StringDecoder {
    constructor(encoding) {
      const e = codec.normalize(encoding);
      if (e === undefined) {
        const error = new TypeError("Unknown encoding: " + encoding);
        error.code = "ERR_UNKNOWN_ENCODING";
        throw error;
      }
      this.encoding = e === "utf16le" ? "utf16le" : e;
      this.pending = new Uint8Array(0);
    }
    write(chunk) {
      if (typeof chunk === "string") return chunk;
      let bytes = chunk instanceof Uint8Array ? chunk : new Uint8Array(chunk.buffer || chunk);
      if (this.pending.length) {
        const joined = new Uint8Array(this.pending.length + bytes.length);
        joined.set(this.pending);
        joined.set(bytes, this.pending.length);
        bytes = joined;
      }
      const keep = this.#incomplete(bytes);
      this.pending = bytes.slice(bytes.length - keep);
      return codec.decode(bytes, this.encoding, 0, bytes.length - keep);
    }
    end(chunk) {
      let out = chunk === undefined ? "" : this.write(chunk);
      if (this.pending.length) {
        out += this.encoding === "utf8" ? "\ufffd" : codec.decode(this.pending, this.encoding, 0, this.pending.length);
        this.pending = new Uint8Array(0);
      }
      return out;
    }
    text(chunk, start) {
      return this.write(Buffer.from(chunk).subarray(start));
    }
    #incomplete(bytes) {
      const n = bytes.length;
      switch (this.encoding) {
        case "utf8": {
          for (let back = 1; back <= 3 && back <= n; back++) {
            const b = bytes[n - back];
            if ((b & 0xc0) === 0x80) continue;
            const need = b >= 0xf0 && b <= 0xf4 ? 4 : b >= 0xe0 ? 3 : b >= 0xc2 && b < 0xe0 ? 2 : 1;
            return need > back ? back : 0;
          }
          return 0;
        }
        case "utf16le":
          return n % 2;
        case "base64":
        case "base64url":
          return n % 3;
        default:
          return 0;
      }
    }
  }
  return { StringDecoder };
});
