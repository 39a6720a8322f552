// A Server-Sent Events parser for a fetch() body (EventSource cannot send the Authorization
// header). Feed it decoded text in chunks of any size; it returns the complete messages.
// Follows the WHATWG event-stream rules: lines end in CRLF, LF or CR; a blank line dispatches;
// `:` starts a comment; `field: value` loses one leading space; `id` persists across messages.

export class SseParser {
  constructor() {
    this.buffer = '';
    this.lastEventId = '';
    this.data = [];
    this.type = '';
    this.sawCr = false;
    /** Set on every comment line (keep-alives), so a reader can tell the stream is alive. */
    this.comments = 0;
  }

  /** Parses `text`, returns `[{id, event, data}]` for each message completed by it. */
  push(text) {
    const messages = [];
    // A CR at the end of the previous chunk already ended a line; its LF is not another one.
    if (this.sawCr && text.startsWith('\n')) text = text.slice(1);
    this.sawCr = false;
    this.buffer += text;
    let start = 0;
    for (let i = 0; i < this.buffer.length; i++) {
      const c = this.buffer[i];
      if (c !== '\n' && c !== '\r') continue;
      const line = this.buffer.slice(start, i);
      if (c === '\r') {
        if (i + 1 < this.buffer.length) {
          if (this.buffer[i + 1] === '\n') i++;
        } else {
          this.sawCr = true;
        }
      }
      start = i + 1;
      const message = this.line(line);
      if (message) messages.push(message);
    }
    this.buffer = this.buffer.slice(start);
    return messages;
  }

  line(line) {
    if (line === '') {
      if (this.data.length === 0) { this.type = ''; return null; }
      const message = { id: this.lastEventId, event: this.type || 'message', data: this.data.join('\n') };
      this.data = [];
      this.type = '';
      return message;
    }
    if (line.startsWith(':')) { this.comments++; return null; }
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') this.data.push(value);
    else if (field === 'event') this.type = value;
    else if (field === 'id' && !value.includes('\0')) this.lastEventId = value;
    return null;
  }
}
