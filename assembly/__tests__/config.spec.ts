import { ConfigReader, MAX_CONFIG_BYTES } from "../config";
import { formatJsonNumber, parseJson } from "../json";
import { allIn, inSet, LABEL_LO, LABEL_HI, NAME_LO, NAME_DOT_LO, NAME_HI, TOKEN_LO, TOKEN_HI } from "../text";

const NAME = "retry-budget";

/** A table row: the JSON text of one field's value ("" = field absent), what is read, and the error ("" = none). */
class Row {
  constructor(public value: string, public expected: string, public error: string) {}
}

/** A reader over `{"<key>": <value>}`, or over `{}` when value is "". */
function readerWith(key: string, value: string): ConfigReader {
  const text = value.length == 0 ? "{}" : "{" + '"' + key + '":' + value + "}";
  return ConfigReader.fromBytes(String.UTF8.encode(text), NAME);
}

/** For each row: read `key` from a reader over that row's value; check the result (as text) and the error. */
function expectRows(key: string, rows: Row[], read: (r: ConfigReader) => string): void {
  for (let i: i32 = 0; i < rows.length; i++) {
    const row = rows[i];
    const r = readerWith(key, row.value);
    expect(read(r)).toBe(row.expected, "value: " + row.value);
    expect(errorOf(r)).toBe(row.error, "value: " + row.value);
  }
}

function errorOf(reader: ConfigReader): string {
  const error = reader.error;
  return error == null ? "" : error;
}

function fieldError(path: string, rest: string): string {
  return NAME + ': field "' + path + '": ' + rest;
}

function bytesOf(values: u8[]): ArrayBuffer {
  const buffer = new ArrayBuffer(values.length);
  for (let i: i32 = 0; i < values.length; i++) store<u8>(changetype<usize>(buffer) + <usize>i, values[i]);
  return buffer;
}

const NUMBER_ROWS: Row[] = [
  new Row("", "0.2", ""),
  new Row("null", "0.2", ""),
  new Row("0.5", "0.5", ""),
  new Row("0", "0", ""),
  new Row("1", "1", ""),
  new Row("1e-3", "0.001", ""),
  new Row("1.5", "0.2", fieldError("retryRatio", "expected a number between 0 and 1, got 1.5")),
  new Row("-0.1", "0.2", fieldError("retryRatio", "expected a number between 0 and 1, got -0.1")),
  new Row('"abc"', "0.2", fieldError("retryRatio", 'expected a number between 0 and 1, got "abc"')),
  new Row('"0.5"', "0.2", fieldError("retryRatio", 'expected a number between 0 and 1, got "0.5"')),
  new Row("true", "0.2", fieldError("retryRatio", "expected a number between 0 and 1, got true")),
  new Row("[0.5]", "0.2", fieldError("retryRatio", "expected a number between 0 and 1, got [0.5]")),
  new Row('{"v":1}', "0.2", fieldError("retryRatio", 'expected a number between 0 and 1, got {"v":1}')),
];

const U32_ROWS: Row[] = [
  new Row("", "10", ""),
  new Row("null", "10", ""),
  new Row("1", "1", ""),
  new Row("3600", "3600", ""),
  new Row("30.0", "30", ""),
  new Row("3e2", "300", ""),
  new Row("0", "10", fieldError("windowSeconds", "expected an integer between 1 and 3600, got 0")),
  new Row("3601", "10", fieldError("windowSeconds", "expected an integer between 1 and 3600, got 3601")),
  new Row("1.5", "10", fieldError("windowSeconds", "expected an integer between 1 and 3600, got 1.5")),
  new Row("-5", "10", fieldError("windowSeconds", "expected an integer between 1 and 3600, got -5")),
  new Row("1e10", "10", fieldError("windowSeconds", "expected an integer between 1 and 3600, got 10000000000")),
  new Row('"10"', "10", fieldError("windowSeconds", 'expected an integer between 1 and 3600, got "10"')),
  new Row("false", "10", fieldError("windowSeconds", "expected an integer between 1 and 3600, got false")),
];

const BOOL_ROWS: Row[] = [
  new Row("", "false", ""),
  new Row("null", "false", ""),
  new Row("true", "true", ""),
  new Row("false", "false", ""),
  new Row('"true"', "false", fieldError("trustClientHeaders", 'expected true or false, got "true"')),
  new Row("1", "false", fieldError("trustClientHeaders", "expected true or false, got 1")),
  new Row("0", "false", fieldError("trustClientHeaders", "expected true or false, got 0")),
];

const STRING_ROWS: Row[] = [
  new Row("", "-", ""),
  new Row("null", "-", ""),
  new Row('""', "", ""),
  new Row('"x-tenant"', "x-tenant", ""),
  new Row('"\\u00e9\\ud83d\\ude00 \\"q\\""', '\u00e9\ud83d\ude00 "q"', ""),
  new Row("5", "-", fieldError("header", "expected a string, got 5")),
  new Row('["x"]', "-", fieldError("header", 'expected a string, got ["x"]')),
];

const ONE_OF_ROWS: Row[] = [
  new Row("", "authority", ""),
  new Row("null", "authority", ""),
  new Row('"authority"', "authority", ""),
  new Row('"cluster"', "cluster", ""),
  new Row('"header"', "header", ""),
  new Row(
    '"clustr"',
    "authority",
    fieldError("destinationKey", 'expected one of "authority", "cluster", "header", got "clustr" (did you mean "cluster"?)'),
  ),
  new Row(
    '"Header"',
    "authority",
    fieldError("destinationKey", 'expected one of "authority", "cluster", "header", got "Header" (did you mean "header"?)'),
  ),
  new Row('"route"', "authority", fieldError("destinationKey", 'expected one of "authority", "cluster", "header", got "route"')),
  new Row('""', "authority", fieldError("destinationKey", 'expected one of "authority", "cluster", "header", got ""')),
  new Row("3", "authority", fieldError("destinationKey", 'expected one of "authority", "cluster", "header", got 3')),
];

const U32_LIST_ROWS: Row[] = [
  new Row("", "502,503,504", ""),
  new Row("null", "502,503,504", ""),
  new Row("[]", "", ""),
  new Row("[500, 599, 100]", "500,599,100", ""),
  new Row("5", "502,503,504", fieldError("failureCodes", "expected an array of integers between 100 and 599, got 5")),
  new Row('"502"', "502,503,504", fieldError("failureCodes", 'expected an array of integers between 100 and 599, got "502"')),
  new Row("[502, 6000]", "502,503,504", fieldError("failureCodes[1]", "expected an integer between 100 and 599, got 6000")),
  new Row('[502, "503"]', "502,503,504", fieldError("failureCodes[1]", 'expected an integer between 100 and 599, got "503"')),
  new Row("[99.5]", "502,503,504", fieldError("failureCodes[0]", "expected an integer between 100 and 599, got 99.5")),
  new Row("[null]", "502,503,504", fieldError("failureCodes[0]", "expected an integer between 100 and 599, got null")),
];

const STRING_LIST_ROWS: Row[] = [
  new Row("", "a|b", ""),
  new Row("null", "a|b", ""),
  new Row("[]", "", ""),
  new Row('["x", "", "y"]', "x||y", ""),
  new Row('"x"', "a|b", fieldError("headers", 'expected an array of strings, got "x"')),
  new Row('["x", 1]', "a|b", fieldError("headers[1]", "expected a string, got 1")),
  new Row('[{"x":1}]', "a|b", fieldError("headers[0]", 'expected a string, got {"x":1}')),
];

describe("ConfigReader.number", () => {
  it("returns the value in range, the default when absent or null, and names the field otherwise", () => {
    expectRows("retryRatio", NUMBER_ROWS, (r: ConfigReader): string => formatJsonNumber(r.number("retryRatio", 0.2, 0.0, 1.0)));
  });

  it("describes open-ended ranges", () => {
    let r = readerWith("n", "-1");
    r.number("n", 1, 0, Infinity);
    expect(errorOf(r)).toBe(fieldError("n", "expected a number of at least 0, got -1"));
    r = readerWith("n", "6");
    r.number("n", 1, -Infinity, 5);
    expect(errorOf(r)).toBe(fieldError("n", "expected a number of at most 5, got 6"));
    r = readerWith("n", '"s"');
    r.number("n", 1, -Infinity, Infinity);
    expect(errorOf(r)).toBe(fieldError("n", 'expected a number, got "s"'));
    r = readerWith("n", "-1e300");
    expect(r.number("n", 1, -Infinity, Infinity)).toBe(-1e300);
    expect(r.error).toBeNull();
  });
});

describe("ConfigReader.u32", () => {
  it("accepts whole numbers in range only", () => {
    expectRows("windowSeconds", U32_ROWS, (r: ConfigReader): string => r.u32("windowSeconds", 10, 1, 3600).toString());
  });

  it("covers the whole u32 range", () => {
    let r = readerWith("n", "4294967295");
    expect(r.u32("n", 0, 0, u32.MAX_VALUE)).toBe(u32.MAX_VALUE);
    expect(r.error).toBeNull();
    r = readerWith("n", "4294967296");
    expect(r.u32("n", 7, 0, u32.MAX_VALUE)).toBe(7);
    expect(errorOf(r)).toBe(fieldError("n", "expected an integer between 0 and 4294967295, got 4294967296"));
  });
});

describe("ConfigReader.bool", () => {
  it("accepts only true and false", () => {
    expectRows("trustClientHeaders", BOOL_ROWS, (r: ConfigReader): string => r.bool("trustClientHeaders", false).toString());
  });

  it("returns a true default when absent", () => {
    expect(readerWith("b", "").bool("b", true)).toBe(true);
  });
});

describe("ConfigReader.string", () => {
  it("returns any string, decoded, and rejects other kinds", () => {
    expectRows("header", STRING_ROWS, (r: ConfigReader): string => r.string("header", "-"));
  });
});

describe("ConfigReader.oneOf", () => {
  it("accepts the listed choices exactly and suggests a near miss", () => {
    expectRows("destinationKey", ONE_OF_ROWS, (r: ConfigReader): string => r.oneOf("destinationKey", "authority", ["authority", "cluster", "header"]));
  });
});

describe("ConfigReader.u32List", () => {
  it("checks every element and names the bad one by index", () => {
    expectRows("failureCodes", U32_LIST_ROWS, (r: ConfigReader): string => r.u32List("failureCodes", [502, 503, 504], 100, 599).join(","));
  });
});

describe("ConfigReader.stringList", () => {
  it("checks every element and names the bad one by index", () => {
    expectRows("headers", STRING_LIST_ROWS, (r: ConfigReader): string => r.stringList("headers", ["a", "b"]).join("|"));
  });
});

describe("ConfigReader.fromBytes", () => {
  it("accepts a configuration of exactly MAX_CONFIG_BYTES and refuses one byte more, unparsed", () => {
    const head = '{"retryRatio": 0.5, "pad": "';
    const fill = MAX_CONFIG_BYTES - head.length - 2;
    const exact = head + "x".repeat(fill) + '"}';
    expect(String.UTF8.byteLength(exact)).toBe(MAX_CONFIG_BYTES);
    let r = ConfigReader.fromBytes(String.UTF8.encode(exact), NAME);
    expect(r.number("retryRatio", 0.2, 0, 1)).toBe(0.5);
    r.string("pad", "");
    r.done();
    expect(r.error).toBeNull();
    // one more byte, and the JSON is also broken: the size is what is reported
    r = ConfigReader.fromBytes(String.UTF8.encode(head + "x".repeat(fill + 2) + '"'), NAME);
    expect(r.number("retryRatio", 0.2, 0, 1)).toBe(0.2);
    r.done();
    expect(errorOf(r)).toBe(NAME + ": configuration is 262145 bytes, more than the cap of 262144 bytes (256 KiB)");
  });

  it("counts the cap in UTF-8 bytes for text too", () => {
    const r = ConfigReader.fromString('{"a": "' + "\u00e9".repeat(MAX_CONFIG_BYTES / 2) + '"}', NAME);
    expect(errorOf(r)).toBe(NAME + ": configuration is " + (MAX_CONFIG_BYTES + 9).toString() + " bytes, more than the cap of 262144 bytes (256 KiB)");
  });

  it("treats an empty buffer as all defaults", () => {
    const r = ConfigReader.fromBytes(new ArrayBuffer(0), NAME);
    expect(r.number("retryRatio", 0.2, 0, 1)).toBe(0.2);
    expect(r.u32("windowSeconds", 10, 1, 3600)).toBe(10);
    expect(r.object("rollback").bool("enabled", true)).toBe(true);
    expect(r.objects("rules").length).toBe(0);
    r.done();
    expect(r.error).toBeNull();
  });

  it("treats whitespace-only bytes and {} as all defaults", () => {
    let r = ConfigReader.fromBytes(String.UTF8.encode(" \n\t\r "), NAME);
    expect(r.string("header", "h")).toBe("h");
    r.done();
    expect(r.error).toBeNull();
    r = ConfigReader.fromBytes(String.UTF8.encode("{}"), NAME);
    expect(r.string("header", "h")).toBe("h");
    r.done();
    expect(r.error).toBeNull();
  });

  it("reports invalid JSON with the reader's name and a byte offset", () => {
    const r = ConfigReader.fromBytes(String.UTF8.encode('{"retryRatio": 0.5 "x": 1}'), NAME);
    const message = NAME + ': syntax error at line 1 column 20 (byte 19) in "retryRatio": expected \',\' or \'}\', got \'"\'';
    expect(errorOf(r)).toBe(message);
    expect(r.number("retryRatio", 0.2, 0, 1)).toBe(0.2);
    r.done();
    expect(errorOf(r)).toBe(message);
  });

  it("reports malformed UTF-8", () => {
    const r = ConfigReader.fromBytes(bytesOf([0x7b, 0x22, 0xc3, 0x28, 0x22, 0x3a, 0x31, 0x7d]), NAME);
    expect(errorOf(r)).toBe(NAME + ": syntax error at line 1 column 3 (byte 2): malformed UTF-8");
  });

  it("rejects a top level that is not an object", () => {
    const tops: string[] = ["[1,2]", '"x"', "5", "null", "true"];
    for (let i: i32 = 0; i < tops.length; i++) {
      const r = ConfigReader.fromBytes(String.UTF8.encode(tops[i]), NAME);
      expect(errorOf(r)).toBe(NAME + ": expected a JSON object at the top level, got " + tops[i]);
      r.done();
      expect(errorOf(r)).toBe(NAME + ": expected a JSON object at the top level, got " + tops[i]);
    }
  });

  it("reads the same configuration from a string or a parsed value", () => {
    let r = ConfigReader.fromString('{"a":2}', NAME);
    expect(r.u32("a", 0, 0, 9)).toBe(2);
    r = ConfigReader.fromString("", NAME);
    expect(r.u32("a", 1, 0, 9)).toBe(1);
    expect(r.error).toBeNull();
    r = ConfigReader.fromValue(parseJson('{"a":3}')!, NAME);
    expect(r.u32("a", 0, 0, 9)).toBe(3);
    r = ConfigReader.fromValue(parseJson("[]")!, NAME);
    expect(errorOf(r)).toBe(NAME + ": expected a JSON object at the top level, got []");
    r = ConfigReader.fromString("{", NAME);
    expect(errorOf(r)).toBe(NAME + ": syntax error at line 1 column 2 (byte 1): expected a string key, got end of input");
  });

  it("leaves the name prefix out when the name is empty", () => {
    const r = ConfigReader.fromString('{"a":"x"}', "");
    r.u32("a", 0, 0, 9);
    expect(errorOf(r)).toBe('field "a": expected an integer between 0 and 9, got "x"');
  });
});

describe("ConfigReader errors", () => {
  it("keeps the first error and returns defaults for the fields after it", () => {
    const r = ConfigReader.fromString('{"a":"x","b":"y","c":3}', NAME);
    expect(r.u32("a", 1, 0, 9)).toBe(1);
    expect(r.u32("b", 2, 0, 9)).toBe(2);
    expect(r.u32("c", 0, 0, 9)).toBe(3);
    r.done();
    expect(errorOf(r)).toBe(fieldError("a", 'expected an integer between 0 and 9, got "x"'));
  });

  it("quotes long values cut to 64 characters", () => {
    const long = "a".repeat(100);
    const r = readerWith("header", "[" + '"' + long + '"' + "]");
    r.string("header", "");
    expect(errorOf(r)).toBe(fieldError("header", 'expected a string, got ["' + "a".repeat(59) + "..."));
  });

  it("does not cut a surrogate pair in half", () => {
    // the pair sits at characters 60-61 of the JSON text, across the cut at 61
    const r = readerWith("n", '"' + "a".repeat(59) + "\ud83d\ude00" + "bbbbb" + '"');
    r.u32("n", 0, 0, 1);
    expect(errorOf(r)).toBe(fieldError("n", 'expected an integer between 0 and 1, got "' + "a".repeat(59) + "..."));
  });

  it("escapes odd keys and values in messages as JSON", () => {
    const r = ConfigReader.fromString('{"we\\"ird":"line\\nbreak"}', NAME);
    r.bool('we"ird', false);
    expect(errorOf(r)).toBe(NAME + ': field "we\\"ird": expected true or false, got "line\\nbreak"');
  });

  it("records a caller's own check against a field path", () => {
    const r = ConfigReader.fromString('{"rollback":{"minMs":50,"maxMs":10}}', NAME);
    const rollback = r.object("rollback");
    const minMs = rollback.u32("minMs", 0, 0, 60000);
    const maxMs = rollback.u32("maxMs", 0, 0, 60000);
    if (maxMs < minMs) rollback.fail("maxMs", 'must be at least "minMs" (50), got 10');
    r.done();
    expect(errorOf(r)).toBe(fieldError("rollback.maxMs", 'must be at least "minMs" (50), got 10'));
  });

  it("answers has() without marking the key as read", () => {
    const r = ConfigReader.fromString('{"a":1,"n":null}', NAME);
    expect(r.has("a")).toBe(true);
    expect(r.has("n")).toBe(false);
    expect(r.has("zz")).toBe(false);
    r.done();
    expect(errorOf(r)).toBe(NAME + ': unknown field "a"');
  });
});

describe("ConfigReader.done", () => {
  it("passes when every key was read", () => {
    const r = ConfigReader.fromString('{"retryRatio":0.5,"windowSeconds":30,"unused":null}', NAME);
    r.number("retryRatio", 0.2, 0, 1);
    r.u32("windowSeconds", 10, 1, 3600);
    r.string("unused", "");
    r.done();
    expect(r.error).toBeNull();
  });

  it("names an unknown key and suggests the nearest known one", () => {
    const cases: string[][] = [
      ["retryRaito", ' (did you mean "retryRatio"?)'],
      ["retryRatios", ' (did you mean "retryRatio"?)'],
      ["retyRatio", ' (did you mean "retryRatio"?)'],
      ["RetryRatio", ' (did you mean "retryRatio"?)'],
      ["windowSecs", ' (did you mean "windowSeconds"?)'],
      ["windowSecondz", ' (did you mean "windowSeconds"?)'],
      ["header", ' (did you mean "headers"?)'],
      ["hdr", ""],
      ["windowSecondsTotal", ""],
      ["retryRatioo", ' (did you mean "retryRatio"?)'],
      ["ratio", ""],
      ["x", ""],
      ["retryRat", ' (did you mean "retryRatio"?)'],
      ["retryR", ""],
      ["windowSecodns", ' (did you mean "windowSeconds"?)'],
      ["rteryRatio", ' (did you mean "retryRatio"?)'],
      ["RETRYRATIO", ' (did you mean "retryRatio"?)'],
      ["headres", ' (did you mean "headers"?)'],
      ["haeders", ' (did you mean "headers"?)'],
    ];
    for (let i: i32 = 0; i < cases.length; i++) {
      const key = cases[i][0];
      const r = readerWith(key, "1");
      r.number("retryRatio", 0.2, 0, 1);
      r.u32("windowSeconds", 10, 1, 3600);
      r.stringList("headers", []);
      r.done();
      expect(errorOf(r)).toBe(NAME + ": unknown field " + '"' + key + '"' + cases[i][1], "key: " + key);
    }
  });

  it("suggests a short key only for a single edit", () => {
    let r = readerWith("ab", "1");
    r.u32("abc", 0, 0, 9);
    r.done();
    expect(errorOf(r)).toBe(NAME + ': unknown field "ab" (did you mean "abc"?)');
    r = readerWith("ba", "1");
    r.u32("abc", 0, 0, 9);
    r.done();
    expect(errorOf(r)).toBe(NAME + ': unknown field "ba"');
  });

  it("checks every nested level from the root, with full paths", () => {
    const r = ConfigReader.fromString('{"rollback":{"errorRate":0.1,"windowSecond":5}}', NAME);
    const rollback = r.object("rollback");
    rollback.number("errorRate", 0.5, 0, 1);
    rollback.u32("windowSeconds", 10, 1, 3600);
    r.done();
    expect(errorOf(r)).toBe(NAME + ': unknown field "rollback.windowSecond" (did you mean "windowSeconds"?)');
  });

  it("reports a nested object that was never read as an unknown field", () => {
    const r = ConfigReader.fromString('{"retryRatio":0.1,"rollback":{"errorRate":0.1}}', NAME);
    r.number("retryRatio", 0.2, 0, 1);
    r.done();
    expect(errorOf(r)).toBe(NAME + ': unknown field "rollback"');
  });

  it("reports the outer level before the inner one", () => {
    const r = ConfigReader.fromString('{"a":{"x":1},"b":2}', NAME);
    r.object("a");
    r.done();
    expect(errorOf(r)).toBe(NAME + ': unknown field "b"'); // and no "did you mean "a"": one letter is no near miss
  });

  it("checks a child's keys when done() is called on the child alone", () => {
    const r = ConfigReader.fromString('{"a":{"x":1}}', NAME);
    const a = r.object("a");
    a.done();
    expect(errorOf(r)).toBe(NAME + ': unknown field "a.x"');
  });

  it("does not replace an earlier read error", () => {
    const r = ConfigReader.fromString('{"a":"x","zz":1}', NAME);
    r.u32("a", 0, 0, 9);
    r.done();
    expect(errorOf(r)).toBe(fieldError("a", 'expected an integer between 0 and 9, got "x"'));
  });
});

describe("ConfigReader.object", () => {
  it("reads nested fields with dotted paths in errors", () => {
    const r = ConfigReader.fromString('{"rollback":{"errorRate":"abc"}}', NAME);
    const rollback = r.object("rollback");
    expect(rollback.prefix).toBe("rollback.");
    expect(rollback.number("errorRate", 0.5, 0.0, 1.0)).toBe(0.5);
    expect(errorOf(r)).toBe('retry-budget: field "rollback.errorRate": expected a number between 0 and 1, got "abc"');
  });

  it("reads three levels deep", () => {
    const r = ConfigReader.fromString('{"a":{"b":{"c":7,"d":"x"}}}', NAME);
    const b = r.object("a").object("b");
    expect(b.u32("c", 0, 0, 9)).toBe(7);
    expect(b.u32("d", 0, 0, 9)).toBe(0);
    expect(errorOf(r)).toBe(fieldError("a.b.d", 'expected an integer between 0 and 9, got "x"'));
  });

  it("gives an empty reader with defaults when absent or null", () => {
    const absent = ConfigReader.fromString("{}", NAME).object("rollback");
    expect(absent.number("errorRate", 0.5, 0, 1)).toBe(0.5);
    const empty = ConfigReader.fromString('{"rollback":null}', NAME);
    expect(empty.object("rollback").u32("n", 4, 0, 9)).toBe(4);
    empty.done();
    expect(empty.error).toBeNull();
  });

  it("rejects a value that is not an object", () => {
    const r = ConfigReader.fromString('{"rollback":[1]}', NAME);
    expect(r.object("rollback").u32("n", 4, 0, 9)).toBe(4);
    r.done();
    expect(errorOf(r)).toBe(fieldError("rollback", "expected an object, got [1]"));
  });
});

describe("ConfigReader.objects", () => {
  it("returns one reader per element with indexed paths", () => {
    const r = ConfigReader.fromString('{"rules":[{"name":"a","weight":1},{"name":"b"}]}', NAME);
    const rules = r.objects("rules");
    expect(rules.length).toBe(2);
    expect(rules[0].prefix).toBe("rules[0].");
    expect(rules[0].string("name", "")).toBe("a");
    expect(rules[0].u32("weight", 5, 0, 9)).toBe(1);
    expect(rules[1].string("name", "")).toBe("b");
    expect(rules[1].u32("weight", 5, 0, 9)).toBe(5);
    r.done();
    expect(r.error).toBeNull();
  });

  it("names the element and field of a bad value", () => {
    const r = ConfigReader.fromString('{"rules":[{"name":"a"},{"name":5}]}', NAME);
    const rules = r.objects("rules");
    for (let i: i32 = 0; i < rules.length; i++) rules[i].string("name", "");
    expect(errorOf(r)).toBe(fieldError("rules[1].name", "expected a string, got 5"));
  });

  it("reports an unknown key inside an element from the root's done()", () => {
    const r = ConfigReader.fromString('{"rules":[{"name":"a"},{"nmae":"b"}]}', NAME);
    const rules = r.objects("rules");
    for (let i: i32 = 0; i < rules.length; i++) rules[i].string("name", "");
    r.done();
    expect(errorOf(r)).toBe(NAME + ': unknown field "rules[1].nmae" (did you mean "name"?)');
  });

  it("reads arrays of objects inside arrays of objects", () => {
    const r = ConfigReader.fromString('{"routes":[{"rules":[{"code":1}]},{"rules":[{"code":2},{"code":-1}]}]}', NAME);
    const routes = r.objects("routes");
    for (let i: i32 = 0; i < routes.length; i++) {
      const rules = routes[i].objects("rules");
      for (let j: i32 = 0; j < rules.length; j++) rules[j].u32("code", 0, 0, 9);
    }
    expect(errorOf(r)).toBe(fieldError("routes[1].rules[1].code", "expected an integer between 0 and 9, got -1"));
  });

  it("returns no readers when absent or null", () => {
    expect(ConfigReader.fromString("{}", NAME).objects("rules").length).toBe(0);
    const r = ConfigReader.fromString('{"rules":null}', NAME);
    expect(r.objects("rules").length).toBe(0);
    r.done();
    expect(r.error).toBeNull();
  });

  it("rejects a value that is not an array, and elements that are not objects", () => {
    let r = ConfigReader.fromString('{"rules":{"name":"a"}}', NAME);
    expect(r.objects("rules").length).toBe(0);
    expect(errorOf(r)).toBe(fieldError("rules", 'expected an array of objects, got {"name":"a"}'));
    r = ConfigReader.fromString('{"rules":[{"name":"a"},"b"]}', NAME);
    const rules = r.objects("rules");
    expect(rules.length).toBe(2);
    expect(rules[1].string("name", "-")).toBe("-");
    expect(errorOf(r)).toBe(fieldError("rules[1]", 'expected an object, got "b"'));
  });
});

describe("ConfigReader for a whole filter", () => {
  it("reads the documented retry-budget shape with defaults for what is missing", () => {
    const text =
      '{"retryRatio":0.25,"windowSeconds":60,"destinationKey":"header","header":"x-svc",' +
      '"failureCodes":[503],"rollback":{"errorRate":0.5},"rules":[{"name":"a"}]}';
    const r = ConfigReader.fromBytes(String.UTF8.encode(text), NAME);
    expect(r.number("retryRatio", 0.2, 0.0, 1.0)).toBe(0.25);
    expect(r.u32("windowSeconds", 10, 1, 3600)).toBe(60);
    expect(r.bool("trustClientHeaders", false)).toBe(false);
    expect(r.oneOf("destinationKey", "authority", ["authority", "cluster", "header"])).toBe("header");
    expect(r.string("header", "")).toBe("x-svc");
    expect(r.u32List("failureCodes", [502, 503, 504], 100, 599).join(",")).toBe("503");
    expect(r.object("rollback").number("errorRate", 0.1, 0, 1)).toBe(0.5);
    const rules = r.objects("rules");
    expect(rules.length).toBe(1);
    expect(rules[0].string("name", "")).toBe("a");
    r.done();
    expect(r.error).toBeNull();
  });
});

describe("ASCII sets (text.ts inSet/allIn) used by the name checks", () => {
  it("hold exactly the characters the name rules list, for every UTF-16 code unit", () => {
    let mismatches: i32 = 0;
    let first = "";
    for (let c: u32 = 0; c <= 0xffff; c++) {
      const lower = c >= 0x61 && c <= 0x7a;
      const upper = c >= 0x41 && c <= 0x5a;
      const digit = c >= 0x30 && c <= 0x39;
      const dashUnderscore = c == 0x2d || c == 0x5f;
      const punct = c == 0x21 || c == 0x23 || c == 0x24 || c == 0x25 || c == 0x26 || c == 0x27 || c == 0x2a || c == 0x2b ||
        c == 0x5e || c == 0x60 || c == 0x7c || c == 0x7e;
      const ok = inSet(c, LABEL_LO, LABEL_HI) == (lower || upper || digit || dashUnderscore || c == 0x2e || c == 0x3a || c == 0x2f) &&
        inSet(c, NAME_LO, NAME_HI) == (lower || digit || dashUnderscore) &&
        inSet(c, NAME_DOT_LO, NAME_HI) == (lower || digit || dashUnderscore || c == 0x2e) &&
        inSet(c, NAME_DOT_LO, LABEL_HI) == (lower || upper || digit || dashUnderscore || c == 0x2e) &&
        inSet(c, TOKEN_LO, TOKEN_HI) == (lower || digit || dashUnderscore || c == 0x2e || punct);
      if (!ok) {
        if (mismatches == 0) first = c.toString();
        mismatches++;
      }
    }
    expect(mismatches).toBe(0, "first mismatch at code unit " + first);
  });

  it("checks every code unit of a string, and passes the empty string", () => {
    expect(allIn("", NAME_LO, NAME_HI)).toBe(true);
    expect(allIn("x-breaker_state", NAME_LO, NAME_HI)).toBe(true);
    expect(allIn("x-breaker.state", NAME_LO, NAME_HI)).toBe(false);
    expect(allIn("x-breaker.state", NAME_DOT_LO, NAME_HI)).toBe(true);
    expect(allIn("x-Breaker", NAME_DOT_LO, NAME_HI)).toBe(false);
    expect(allIn("abc\u00e9", TOKEN_LO, TOKEN_HI)).toBe(false);
    expect(allIn("a\u0100", TOKEN_LO, TOKEN_HI)).toBe(false); // 0x100: bit 0 of neither word
  });
});
