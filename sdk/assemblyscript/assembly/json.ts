// json.ts - a small JSON reader and writer for actors (states, messages and host
// answers are JSON by convention). Objects keep their keys in order.

export const enum Kind { Null, Bool, Number, String, Array, Object }

/** A JSON value. Build one with the static constructors, read one with parse(). */
export class Value {
  kind: Kind = Kind.Null;
  bool: bool = false;
  num: f64 = 0;
  /** The number's exact value when it was written as an integer. */
  int: i64 = 0;
  isInt: bool = false;
  str: string = "";
  items: Array<Value> = [];
  keys: Array<string> = [];

  static null(): Value { return new Value(); }
  static fromBool(b: bool): Value { const v = new Value(); v.kind = Kind.Bool; v.bool = b; return v; }
  static fromInt(i: i64): Value {
    const v = new Value(); v.kind = Kind.Number; v.int = i; v.num = <f64>i; v.isInt = true; return v;
  }
  static fromNumber(n: f64): Value { const v = new Value(); v.kind = Kind.Number; v.num = n; return v; }
  static fromString(s: string): Value { const v = new Value(); v.kind = Kind.String; v.str = s; return v; }
  static array(): Value { const v = new Value(); v.kind = Kind.Array; return v; }
  static object(): Value { const v = new Value(); v.kind = Kind.Object; return v; }

  get isNull(): bool { return this.kind == Kind.Null; }
  get isString(): bool { return this.kind == Kind.String; }
  get isNumber(): bool { return this.kind == Kind.Number; }
  get isArray(): bool { return this.kind == Kind.Array; }
  get isObject(): bool { return this.kind == Kind.Object; }

  /** An object's member, or null. */
  get(key: string): Value | null {
    if (this.kind != Kind.Object) return null;
    for (let i = 0; i < this.keys.length; i++) if (this.keys[i] == key) return this.items[i];
    return null;
  }

  /** Sets an object's member (replacing one with the same key); returns this. */
  set(key: string, value: Value): Value {
    for (let i = 0; i < this.keys.length; i++) {
      if (this.keys[i] == key) { this.items[i] = value; return this; }
    }
    this.keys.push(key);
    this.items.push(value);
    return this;
  }

  /** Appends to an array; returns this. */
  push(value: Value): Value { this.items.push(value); return this; }

  /** An array's length or an object's member count. */
  get length(): i32 { return this.items.length; }

  /** The i-th element of an array, or null. */
  at(i: i32): Value | null { return i >= 0 && i < this.items.length ? this.items[i] : null; }

  /** The value at a JSON pointer such as "/choices/0/message/content", or null. */
  pointer(path: string): Value | null {
    if (path.length == 0) return this;
    if (!path.startsWith("/")) return null;
    const parts = path.substring(1).split("/");
    let cur: Value = this;
    for (let i = 0; i < parts.length; i++) {
      const key = parts[i].replaceAll("~1", "/").replaceAll("~0", "~");
      let next: Value | null = null;
      if (cur.kind == Kind.Object) next = cur.get(key);
      else if (cur.kind == Kind.Array) {
        const n = I32.parseInt(key, 10);
        if (key.length > 0 && n.toString() == key) next = cur.at(n);
      }
      if (next == null) return null;
      cur = next;
    }
    return cur;
  }

  toString(): string {
    const parts = new Array<string>();
    write(this, parts);
    return parts.join("");
  }
}

/** Parses JSON text; null when it is not exactly one JSON value. */
export function parse(text: string): Value | null {
  const p = new Parser(text);
  p.ws();
  const v = p.value(0);
  if (v == null || p.failed) return null;
  p.ws();
  return p.pos == text.length ? v : null;
}

/** A JSON string literal for s (with the quotes). */
export function quote(s: string): string {
  const parts = new Array<string>();
  writeString(s, parts);
  return parts.join("");
}

const MAX_DEPTH = 128;

class Parser {
  pos: i32 = 0;
  failed: bool = false;
  constructor(public text: string) {}

  ws(): void {
    const t = this.text;
    while (this.pos < t.length) {
      const c = t.charCodeAt(this.pos);
      if (c != 0x20 && c != 0x09 && c != 0x0a && c != 0x0d) break;
      this.pos++;
    }
  }

  fail(): Value | null { this.failed = true; return null; }

  lit(word: string): bool {
    if (this.text.substr(this.pos, word.length) != word) return false;
    this.pos += word.length;
    return true;
  }

  value(depth: i32): Value | null {
    if (depth > MAX_DEPTH || this.pos >= this.text.length) return this.fail();
    const c = this.text.charCodeAt(this.pos);
    if (c == 0x7b) return this.object(depth);
    if (c == 0x5b) return this.array(depth);
    if (c == 0x22) {
      const s = this.string();
      return s == null ? this.fail() : Value.fromString(s);
    }
    if (this.lit("true")) return Value.fromBool(true);
    if (this.lit("false")) return Value.fromBool(false);
    if (this.lit("null")) return Value.null();
    return this.number();
  }

  object(depth: i32): Value | null {
    const v = Value.object();
    this.pos++;
    this.ws();
    if (this.pos < this.text.length && this.text.charCodeAt(this.pos) == 0x7d) { this.pos++; return v; }
    while (true) {
      this.ws();
      if (this.pos >= this.text.length || this.text.charCodeAt(this.pos) != 0x22) return this.fail();
      const k = this.string();
      if (k == null) return this.fail();
      this.ws();
      if (this.pos >= this.text.length || this.text.charCodeAt(this.pos) != 0x3a) return this.fail();
      this.pos++;
      this.ws();
      const m = this.value(depth + 1);
      if (m == null) return this.fail();
      v.set(k, m);
      this.ws();
      if (this.pos >= this.text.length) return this.fail();
      const c = this.text.charCodeAt(this.pos++);
      if (c == 0x7d) return v;
      if (c != 0x2c) return this.fail();
    }
  }

  array(depth: i32): Value | null {
    const v = Value.array();
    this.pos++;
    this.ws();
    if (this.pos < this.text.length && this.text.charCodeAt(this.pos) == 0x5d) { this.pos++; return v; }
    while (true) {
      this.ws();
      const m = this.value(depth + 1);
      if (m == null) return this.fail();
      v.push(m);
      this.ws();
      if (this.pos >= this.text.length) return this.fail();
      const c = this.text.charCodeAt(this.pos++);
      if (c == 0x5d) return v;
      if (c != 0x2c) return this.fail();
    }
  }

  hex4(): i32 {
    if (this.pos + 4 > this.text.length) return -1;
    let n = 0;
    for (let i = 0; i < 4; i++) {
      const c = this.text.charCodeAt(this.pos++);
      let d = -1;
      if (c >= 0x30 && c <= 0x39) d = c - 0x30;
      else if (c >= 0x61 && c <= 0x66) d = c - 0x61 + 10;
      else if (c >= 0x41 && c <= 0x46) d = c - 0x41 + 10;
      if (d < 0) return -1;
      n = n * 16 + d;
    }
    return n;
  }

  string(): string | null {
    const t = this.text;
    this.pos++;
    const parts = new Array<string>();
    let start = this.pos;
    while (this.pos < t.length) {
      const c = t.charCodeAt(this.pos);
      if (c == 0x22) {
        parts.push(t.substring(start, this.pos));
        this.pos++;
        return parts.join("");
      }
      if (c < 0x20) return null;
      if (c != 0x5c) { this.pos++; continue; }
      parts.push(t.substring(start, this.pos));
      this.pos++;
      if (this.pos >= t.length) return null;
      const e = t.charCodeAt(this.pos++);
      if (e == 0x22) parts.push("\"");
      else if (e == 0x5c) parts.push("\\");
      else if (e == 0x2f) parts.push("/");
      else if (e == 0x62) parts.push("\b");
      else if (e == 0x66) parts.push("\f");
      else if (e == 0x6e) parts.push("\n");
      else if (e == 0x72) parts.push("\r");
      else if (e == 0x74) parts.push("\t");
      else if (e == 0x75) {
        const u = this.hex4();
        if (u < 0) return null;
        parts.push(String.fromCharCode(u));   // surrogate halves pair up in UTF-16
      } else return null;
      start = this.pos;
    }
    return null;
  }

  number(): Value | null {
    const t = this.text;
    const start = this.pos;
    let isInt = true;
    if (this.pos < t.length && t.charCodeAt(this.pos) == 0x2d) this.pos++;
    const digits = this.pos;
    while (this.pos < t.length && isDigit(t.charCodeAt(this.pos))) this.pos++;
    if (this.pos == digits) return this.fail();
    if (this.pos - digits > 1 && t.charCodeAt(digits) == 0x30) return this.fail();
    if (this.pos < t.length && t.charCodeAt(this.pos) == 0x2e) {
      isInt = false;
      this.pos++;
      const f = this.pos;
      while (this.pos < t.length && isDigit(t.charCodeAt(this.pos))) this.pos++;
      if (this.pos == f) return this.fail();
    }
    if (this.pos < t.length && (t.charCodeAt(this.pos) | 0x20) == 0x65) {
      isInt = false;
      this.pos++;
      if (this.pos < t.length && (t.charCodeAt(this.pos) == 0x2b || t.charCodeAt(this.pos) == 0x2d)) this.pos++;
      const x = this.pos;
      while (this.pos < t.length && isDigit(t.charCodeAt(this.pos))) this.pos++;
      if (this.pos == x) return this.fail();
    }
    const s = t.substring(start, this.pos);
    // integers of up to 18 digits are exact in an i64
    if (isInt && this.pos - digits <= 18) return Value.fromInt(I64.parseInt(s, 10));
    return Value.fromNumber(F64.parseFloat(s));
  }
}

function isDigit(c: i32): bool { return c >= 0x30 && c <= 0x39; }

const HEX = "0123456789abcdef";

function writeString(s: string, out: Array<string>): void {
  out.push("\"");
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x20 && c != 0x22 && c != 0x5c) continue;
    out.push(s.substring(start, i));
    if (c == 0x22) out.push("\\\"");
    else if (c == 0x5c) out.push("\\\\");
    else if (c == 0x0a) out.push("\\n");
    else if (c == 0x0d) out.push("\\r");
    else if (c == 0x09) out.push("\\t");
    else out.push("\\u00" + HEX.charAt(c >> 4) + HEX.charAt(c & 15));
    start = i + 1;
  }
  out.push(s.substring(start));
  out.push("\"");
}

function write(v: Value, out: Array<string>): void {
  switch (v.kind) {
    case Kind.Null: out.push("null"); break;
    case Kind.Bool: out.push(v.bool ? "true" : "false"); break;
    case Kind.Number:
      if (v.isInt) out.push(v.int.toString());
      else if (!isFinite(v.num)) out.push("null");
      else out.push(v.num.toString());
      break;
    case Kind.String: writeString(v.str, out); break;
    case Kind.Array:
      out.push("[");
      for (let i = 0; i < v.items.length; i++) {
        if (i) out.push(",");
        write(v.items[i], out);
      }
      out.push("]");
      break;
    default:
      out.push("{");
      for (let i = 0; i < v.items.length; i++) {
        if (i) out.push(",");
        writeString(v.keys[i], out);
        out.push(":");
        write(v.items[i], out);
      }
      out.push("}");
  }
}
