import {
  JsonKind,
  JsonObject,
  JsonValue,
  MAX_JSON_DEPTH,
  formatJsonNumber,
  invalidUtf8At,
  jsonError,
  jsonErrorColumn,
  jsonErrorLine,
  jsonErrorOffset,
  jsonErrorPath,
  parseJson,
  parseJsonUtf8,
  quoteJson,
  stringifyJson,
} from "../json";

/** A table row: input and what it must give (compact JSON text, or the exact error). */
class Row {
  constructor(public input: string, public expected: string) {}
}

/** Each row's input must parse and re-serialize to its expected text. */
function expectRoundTrips(rows: Row[]): void {
  for (let i: i32 = 0; i < rows.length; i++) {
    const value = parseJson(rows[i].input);
    const text = value == null ? "(failed) " + jsonError : stringifyJson(value);
    expect(text).toBe(rows[i].expected, "input: " + rows[i].input);
  }
}

function bytesOf(values: u8[]): ArrayBuffer {
  const buffer = new ArrayBuffer(values.length);
  for (let i: i32 = 0; i < values.length; i++) store<u8>(changetype<usize>(buffer) + <usize>i, values[i]);
  return buffer;
}

const VALID: Row[] = [
  new Row("null", "null"),
  new Row("true", "true"),
  new Row("false", "false"),
  new Row(' \t\r\n"x" \n', '"x"'),
  new Row('""', '""'),
  new Row("[]", "[]"),
  new Row("[ ]", "[]"),
  new Row("{}", "{}"),
  new Row("{ \n }", "{}"),
  new Row(' { "a" : [ 1 , { "b" : null } ] , "c" : true } ', '{"a":[1,{"b":null}],"c":true}'),
  new Row('{"z":1,"a":2,"m":3}', '{"z":1,"a":2,"m":3}'),
  new Row('[[],[[]],{"":{}}]', '[[],[[]],{"":{}}]'),
  new Row('{"a":{"a":{"a":1}}}', '{"a":{"a":{"a":1}}}'),
];

const NUMBERS: Row[] = [
  new Row("0", "0"),
  new Row("-0", "0"),
  new Row("7", "7"),
  new Row("-123", "-123"),
  new Row("1.5", "1.5"),
  new Row("-0.25", "-0.25"),
  new Row("0.1", "0.1"),
  new Row("1e2", "100"),
  new Row("1E2", "100"),
  new Row("1e+2", "100"),
  new Row("2.5E-3", "0.0025"),
  new Row("-1.5e3", "-1500"),
  new Row("0e0", "0"),
  new Row("1e21", "1e+21"),
  new Row("1e-7", "1e-7"),
  new Row("123456789012345", "123456789012345"),
  new Row("9007199254740993", "9007199254740992"),
  // no short decimal form (17+ digits): printed as written, not re-derived by float printing
  new Row("12345678901234567890", "12345678901234567890"),
  new Row("1.7976931348623157e308", "1.7976931348623157e308"),
  new Row("0.30000000000000004", "0.30000000000000004"),
  new Row("1e-3", "0.001"),
  new Row("25E-1", "2.5"),
  new Row("1.50", "1.5"),
  new Row("5e-324", "5e-324"),
  new Row("1e-400", "0"),
];

const STRINGS: Row[] = [
  new Row('"plain"', '"plain"'),
  new Row('"a\\"b"', '"a\\"b"'),
  new Row('"back\\\\slash"', '"back\\\\slash"'),
  new Row('"\\/"', '"/"'),
  new Row('"\\b\\f\\n\\r\\t"', '"\\b\\f\\n\\r\\t"'),
  new Row('"\\u0041\\u00e9\\u4E2D"', '"A\u00e9\u4e2d"'),
  new Row('"\\u0000\\u001f"', '"\\u0000\\u001f"'),
  new Row('"\\ud83d\\ude00"', '"\ud83d\ude00"'),
  new Row('"x\\uD83D\\uDE00y"', '"x\ud83d\ude00y"'),
  new Row('"\u00e9\u4e2d\ud83d\ude00"', '"\u00e9\u4e2d\ud83d\ude00"'),
  new Row('"\\u007f\u007f"', '"\u007f\u007f"'),
  new Row('"mixed \\"q\\" and \\\\ \\u2603 end"', '"mixed \\"q\\" and \\\\ \u2603 end"'),
];

const ERRORS: Row[] = [
  // structure
  new Row("", "syntax error at line 1 column 1 (byte 0): expected a value, got end of input"),
  new Row("   ", "syntax error at line 1 column 4 (byte 3): expected a value, got end of input"),
  new Row("[", "syntax error at line 1 column 2 (byte 1) in \"[0]\": expected a value, got end of input"),
  new Row("{", "syntax error at line 1 column 2 (byte 1): expected a string key, got end of input"),
  new Row('{"a":1', "syntax error at line 1 column 7 (byte 6) in \"a\": expected ',' or '}', got end of input"),
  new Row('{"a":1 "b":2}', "syntax error at line 1 column 8 (byte 7) in \"a\": expected ',' or '}', got '\"'"),
  new Row("[1 2]", "syntax error at line 1 column 4 (byte 3) in \"[0]\": expected ',' or ']', got '2'"),
  new Row("[1,]", "syntax error at line 1 column 4 (byte 3) in \"[1]\": trailing ',' before ']'"),
  new Row('{"a":1,}', "syntax error at line 1 column 8 (byte 7): trailing ',' before '}'"),
  new Row("{a:1}", "syntax error at line 1 column 2 (byte 1): expected a string key, got 'a'"),
  new Row("{'a':1}", "syntax error at line 1 column 2 (byte 1): expected a string key, got '''"),
  new Row('{"a" 1}', "syntax error at line 1 column 6 (byte 5) in \"a\": expected ':' after the key, got '1'"),
  new Row('{"a":}', "syntax error at line 1 column 6 (byte 5) in \"a\": expected a value, got '}'"),
  new Row("[,1]", "syntax error at line 1 column 2 (byte 1) in \"[0]\": expected a value, got ','"),
  new Row('{"a":1,"b":2,"a":3}', 'syntax error at line 1 column 14 (byte 13) in "a": duplicate key "a"'),
  new Row('{"x":{"\\u0061":1,"a":2}}', 'syntax error at line 1 column 18 (byte 17) in "x.a": duplicate key "a"'),
  // paths after nested levels close
  new Row('{"a":[1,{"b":2}],"c":[3,x]}', "syntax error at line 1 column 25 (byte 24) in \"c[1]\": expected a value, got 'x'"),
  new Row('[{"a":[]},{"b":{}},{"c":1,}]', "syntax error at line 1 column 27 (byte 26) in \"[2]\": trailing ',' before '}'"),
  new Row('{"a":{"b":1},"c"}', "syntax error at line 1 column 17 (byte 16) in \"c\": expected ':' after the key, got '}'"),
  new Row('{"a":[[],[1]],"b":{"c":{"d":[0,{"e":tru}]}}}', "syntax error at line 1 column 37 (byte 36) in \"b.c.d[1].e\": expected 'true'"),
  new Row("[[1,2],[3,4],[5,]]", "syntax error at line 1 column 17 (byte 16) in \"[2][1]\": trailing ',' before ']'"),
  new Row('{"a":{},"b":[],"c":{"d":1},"d":[{}, {"x":1 "y"}]}', "syntax error at line 1 column 44 (byte 43) in \"d[1].x\": expected ',' or '}', got '\"'"),
  new Row('[1,{"a":[2,3]},{"a":1,"a":2}]', 'syntax error at line 1 column 23 (byte 22) in "[2].a": duplicate key "a"'),
  new Row("[1] x", "syntax error at line 1 column 5 (byte 4): unexpected 'x' after the value"),
  new Row("{} {}", "syntax error at line 1 column 4 (byte 3): unexpected '{' after the value"),
  new Row("1 2", "syntax error at line 1 column 3 (byte 2): unexpected '2' after the value"),
  new Row("\u00a01", "syntax error at line 1 column 1 (byte 0): expected a value, got U+00A0"),
  new Row("\ufeff{}", "syntax error at line 1 column 1 (byte 0): expected a value, got U+FEFF"),
  new Row("// c\n{}", "syntax error at line 1 column 1 (byte 0): expected a value, got '/'"),
  // literals
  new Row("tru", "syntax error at line 1 column 1 (byte 0): expected 'true'"),
  new Row("nul", "syntax error at line 1 column 1 (byte 0): expected 'null'"),
  new Row("[fals]", "syntax error at line 1 column 2 (byte 1) in \"[0]\": expected 'false'"),
  new Row("True", "syntax error at line 1 column 1 (byte 0): expected a value, got 'T'"),
  new Row("truex", "syntax error at line 1 column 5 (byte 4): unexpected 'x' after the value"),
  new Row("NaN", "syntax error at line 1 column 1 (byte 0): expected a value, got 'N'"),
  new Row("Infinity", "syntax error at line 1 column 1 (byte 0): expected a value, got 'I'"),
  new Row("undefined", "syntax error at line 1 column 1 (byte 0): expected a value, got 'u'"),
  // numbers
  new Row("01", "syntax error at line 1 column 1 (byte 0): leading zeros are not allowed"),
  new Row("-01", "syntax error at line 1 column 1 (byte 0): leading zeros are not allowed"),
  new Row("[1, 007]", "syntax error at line 1 column 5 (byte 4) in \"[1]\": leading zeros are not allowed"),
  new Row("-", "syntax error at line 1 column 2 (byte 1): expected a digit after '-', got end of input"),
  new Row("-x", "syntax error at line 1 column 2 (byte 1): expected a digit after '-', got 'x'"),
  new Row("+1", "syntax error at line 1 column 1 (byte 0): expected a value, got '+'"),
  new Row(".5", "syntax error at line 1 column 1 (byte 0): expected a value, got '.'"),
  new Row("1.", "syntax error at line 1 column 3 (byte 2): expected a digit after '.', got end of input"),
  new Row("1.e3", "syntax error at line 1 column 3 (byte 2): expected a digit after '.', got 'e'"),
  new Row("1e", "syntax error at line 1 column 3 (byte 2): expected a digit in the exponent, got end of input"),
  new Row("1e+", "syntax error at line 1 column 4 (byte 3): expected a digit in the exponent, got end of input"),
  new Row("1e+-2", "syntax error at line 1 column 4 (byte 3): expected a digit in the exponent, got '-'"),
  new Row("0x10", "syntax error at line 1 column 2 (byte 1): unexpected 'x' after the value"),
  new Row("1e400", "syntax error at line 1 column 1 (byte 0): number out of range"),
  new Row("[0, -1e309]", "syntax error at line 1 column 5 (byte 4) in \"[1]\": number out of range"),
  // strings
  new Row('"abc', "syntax error at line 1 column 1 (byte 0): unterminated string"),
  new Row('["a", "b\\', "syntax error at line 1 column 9 (byte 8) in \"[1]\": unterminated string"),
  new Row('"a\\x"', "syntax error at line 1 column 3 (byte 2): invalid escape '\\x'"),
  new Row('"\\U0041"', "syntax error at line 1 column 2 (byte 1): invalid escape '\\U'"),
  new Row('"\\u12"', "syntax error at line 1 column 6 (byte 5): expected 4 hex digits after '\\u', got '\"'"),
  new Row('"\\u12G4"', "syntax error at line 1 column 6 (byte 5): expected 4 hex digits after '\\u', got 'G'"),
  new Row('"\\u', "syntax error at line 1 column 4 (byte 3): expected 4 hex digits after '\\u', got end of input"),
  new Row('"\\ud83d"', "syntax error at line 1 column 2 (byte 1): unpaired surrogate \\uD83D"),
  new Row('"\\ud83dx"', "syntax error at line 1 column 2 (byte 1): unpaired surrogate \\uD83D"),
  new Row('"\\ud83d\\u0041"', "syntax error at line 1 column 2 (byte 1): unpaired surrogate \\uD83D"),
  new Row('"\\ud83d\\ud83d"', "syntax error at line 1 column 2 (byte 1): unpaired surrogate \\uD83D"),
  new Row('"\\ud83d\\u00"', "syntax error at line 1 column 12 (byte 11): expected 4 hex digits after '\\u', got '\"'"),
  new Row('"\\ude00"', "syntax error at line 1 column 2 (byte 1): unpaired surrogate \\uDE00"),
  new Row('"a\nb"', "syntax error at line 1 column 3 (byte 2): control character U+000A must be escaped in a string"),
  new Row('"\t"', "syntax error at line 1 column 2 (byte 1): control character U+0009 must be escaped in a string"),
  new Row('"\u0000"', "syntax error at line 1 column 2 (byte 1): control character U+0000 must be escaped in a string"),
  new Row('"x\ud800"', "syntax error at line 1 column 3 (byte 2): unpaired surrogate U+D800"),
  new Row('"\udc00\ud800"', "syntax error at line 1 column 2 (byte 1): unpaired surrogate U+DC00"),
];

/** A token and the f64 the compiler (JavaScript's parseFloat) makes of the same literal. */
class Exact {
  constructor(public input: string, public expected: f64) {}
}

// the nearest f64, ties to even, on both sides of the 16-digit / 10^22 fast path
const EXACT: Exact[] = [
  new Exact("0.1", 0.1),
  new Exact("0.30000000000000004", 0.30000000000000004),
  new Exact("9007199254740993", 9007199254740993.0),
  new Exact("9007199254740995", 9007199254740995.0),
  new Exact("12345678901234567890", 12345678901234567890.0),
  new Exact("123456789012345678901234567890e-10", 12345678901234567890.123456789),
  new Exact("1e23", 1e23),
  new Exact("8.98846567431158e307", 8.98846567431158e307),
  new Exact("1.7976931348623157e308", 1.7976931348623157e308),
  new Exact("1.7976931348623158e308", 1.7976931348623158e308),
  new Exact("2.2250738585072011e-308", 2.2250738585072011e-308),
  new Exact("2.2250738585072014e-308", 2.2250738585072014e-308),
  new Exact("4.9406564584124654e-324", 4.9406564584124654e-324),
  new Exact("2.4703282292062327e-324", 2.4703282292062327e-324),
  new Exact("2.4703282292062328e-324", 2.4703282292062328e-324),
  new Exact("1e-400", 0.0),
  new Exact("-0", -0.0),
  new Exact("0.000001", 0.000001),
  new Exact("1e-7", 1e-7),
  new Exact("3.14159265358979323846264338327950288", 3.14159265358979323846264338327950288),
  new Exact("100000000000000000000000000000000000000000000000000000000000000000000000000000001e-80", 1.0),
  new Exact("-1e300", -1e300),
  new Exact("0.0000000000000000000000000000000000000001", 1e-40),
  new Exact("7.2057594037927933e16", 72057594037927933.0),
];

describe("parseJson", () => {
  it("reads every number as the nearest f64, ties to even, like JavaScript", () => {
    for (let i: i32 = 0; i < EXACT.length; i++) {
      const value = parseJson(EXACT[i].input);
      expect(value).not.toBeNull("input: " + EXACT[i].input);
      expect(reinterpret<u64>(value!.asNumber())).toBe(reinterpret<u64>(EXACT[i].expected), "input: " + EXACT[i].input);
    }
    // past 800 significant digits only "any nonzero" counts: a 1 far down still breaks a tie upwards
    let tie = "9007199254740993";
    for (let i: i32 = 0; i < 900; i++) tie += "0";
    expect(parseJson(tie + "e-900")!.asNumber()).toBe(9007199254740992.0);
    expect(parseJson(tie + "1e-901")!.asNumber()).toBe(9007199254740994.0);
    expect(parseJson("1.7976931348623159e308")).toBeNull();
    expect(jsonError).toBe("syntax error at line 1 column 1 (byte 0): number out of range");
  });


  it("accepts every kind of value and re-serializes it compactly", () => {
    expectRoundTrips(VALID);
  });

  it("reads integers, fractions, exponents and negatives as f64", () => {
    expectRoundTrips(NUMBERS);
  });

  it("decodes every escape, \\u escapes and surrogate pairs", () => {
    expectRoundTrips(STRINGS);
  });

  it("rejects malformed input with the offset and the reason", () => {
    for (let i: i32 = 0; i < ERRORS.length; i++) {
      const value = parseJson(ERRORS[i].input);
      expect(value).toBeNull("input: " + ERRORS[i].input);
      expect(jsonError).toBe(ERRORS[i].expected, "input: " + ERRORS[i].input);
    }
  });

  it("reports the offset separately and clears the error after a success", () => {
    expect(parseJson("[1,,2]")).toBeNull();
    expect(jsonErrorOffset).toBe(3);
    expect(parseJson("[1,2]")).not.toBeNull();
    expect(jsonError).toBe("");
    expect(jsonErrorOffset).toBe(-1);
  });

  it("keeps the exact decoded text of escaped and unescaped strings", () => {
    expect(parseJson('"a\\u0000b"')!.asString()).toBe("a\u0000b");
    expect(parseJson('"a\\u0000b"')!.asString().length).toBe(3);
    expect(parseJson('"\\ud83d\\ude00"')!.asString()).toBe("\ud83d\ude00");
    expect(parseJson('"\\ud83d\\ude00"')!.asString().length).toBe(2);
    expect(parseJson('"\\"\\\\"')!.asString()).toBe('"\\');
  });

  it(`accepts nesting up to ${MAX_JSON_DEPTH} levels and rejects one more`, () => {
    const deepest = "[".repeat(MAX_JSON_DEPTH) + "]".repeat(MAX_JSON_DEPTH);
    expect(parseJson(deepest)).not.toBeNull(jsonError);
    const objects = '{"a":'.repeat(MAX_JSON_DEPTH) + "1" + "}".repeat(MAX_JSON_DEPTH);
    expect(parseJson(objects)).not.toBeNull(jsonError);
    expect(parseJson("[" + deepest + "]")).toBeNull();
    expect(jsonError).toBe('syntax error at line 1 column 33 (byte 32) in "' + "[0]".repeat(MAX_JSON_DEPTH) + '": nested deeper than 32 levels');
    expect(parseJson('{"a":' + objects + "}")).toBeNull();
    expect(jsonError).toBe('syntax error at line 1 column 161 (byte 160) in "a' + ".a".repeat(MAX_JSON_DEPTH - 1) + '": nested deeper than 32 levels');
  });

  it("gives typed access by kind", () => {
    const value = parseJson('{"n":2.5,"s":"x","b":true,"z":null,"a":[1,"two"],"o":{"k":false}}')!;
    expect(value.kind).toBe(JsonKind.Object);
    const obj = value.asObject();
    expect(obj.size).toBe(6);
    expect(obj.keys.join(",")).toBe("n,s,b,z,a,o");
    expect(obj.get("n")!.asNumber()).toBe(2.5);
    expect(obj.get("s")!.asString()).toBe("x");
    expect(obj.get("b")!.asBool()).toBe(true);
    expect(obj.get("z")!.isNull()).toBe(true);
    expect(obj.get("z")!.kind).toBe(JsonKind.Null);
    const items = obj.get("a")!.asArray();
    expect(items.length).toBe(2);
    expect(items[1].kind).toBe(JsonKind.String);
    expect(obj.get("o")!.asObject().get("k")!.asBool()).toBe(false);
    expect(obj.get("missing")).toBeNull();
    expect(obj.has("z")).toBe(true);
    expect(obj.has("Z")).toBe(false);
    expect(obj.indexOf("a")).toBe(4);
  });

  it("compares parsed trees structurally", () => {
    // also proves the as-pect transform fix in as-pect.config.js: without it fields are not compared
    expect<JsonValue | null>(parseJson('[1,{"a":"x"}]')).toStrictEqual(parseJson(' [ 1 , { "a" : "x" } ] '));
    expect<JsonValue | null>(parseJson('[1,{"a":"x"}]')).not.toStrictEqual(parseJson('[1,{"a":"y"}]'));
    expect<JsonValue | null>(parseJson('[1,{"a":"x"}]')).not.toStrictEqual(parseJson('[1,{"b":"x"}]'));
  });
});

describe("parseJson error positions", () => {
  it("counts lines and columns across a multi-line document", () => {
    const text = '{\n  "destinations": [\n    {"name": "a"},\n    {"name": "b"},\n    {"name": "c" "port": 80}\n  ]\n}';
    expect(parseJson(text)).toBeNull();
    expect(jsonErrorLine).toBe(5);
    expect(jsonErrorColumn).toBe(18);
    expect(jsonErrorOffset).toBe(text.indexOf('"port"'));
    expect(jsonErrorPath).toBe("destinations[2].name");
    expect(jsonError).toBe(
      "syntax error at line 5 column 18 (byte " + text.indexOf('"port"').toString() + ') in "destinations[2].name": expected \',\' or \'}\', got \'"\'',
    );
  });

  it("names the enclosing member, not the last one read, after a comma", () => {
    expect(parseJson('{"a": {"b": 1, "c": [true, 2,]}}')).toBeNull();
    expect(jsonErrorPath).toBe("a.c[2]");
    expect(parseJson('{"a": {"b": 1,}}')).toBeNull();
    expect(jsonErrorPath).toBe("a");
    expect(parseJson('{"a": [{"b": "\\q"}]}')).toBeNull();
    expect(jsonErrorPath).toBe("a[0].b");
    expect(parseJson('{"a": 1} x')).toBeNull();
    expect(jsonErrorPath).toBe("");
  });

  it("counts a character outside the BMP as one column", () => {
    expect(parseJson('["\ud83d\ude00" x]')).toBeNull();
    expect(jsonErrorColumn).toBe(6);
    expect(jsonErrorOffset).toBe(6);
    expect(jsonError).toBe("syntax error at line 1 column 6 (byte 8) in \"[0]\": expected ',' or ']', got 'x'");
  });

  it("clears every part after a success", () => {
    expect(parseJson("[1,,2]")).toBeNull();
    expect(parseJson("[1,2]")).not.toBeNull();
    expect(jsonErrorLine).toBe(0);
    expect(jsonErrorColumn).toBe(0);
    expect(jsonErrorPath).toBe("");
  });
});

describe("parseJson in linear time", () => {
  it("decodes a string of 100000 escapes exactly", () => {
    const text = '"' + "\\n\\u0041".repeat(50000) + '"';
    const value = parseJson(text);
    expect(value).not.toBeNull(jsonError);
    const s = value!.asString();
    expect(s.length).toBe(100000);
    expect(s.substring(0, 4)).toBe("\nA\nA");
    expect(s.charCodeAt(99998)).toBe(0x0a);
    expect(s.charCodeAt(99999)).toBe(0x41);
    expect(quoteJson(s).length).toBe(2 + 50000 * 3);
  });

  it("keeps a run before, between and after escapes, across a buffer growth", () => {
    const run = "abcdefghij".repeat(20);
    const value = parseJson('"' + run + "\\t" + run + "\\u00e9" + run + '"');
    expect(value!.asString()).toBe(run + "\t" + run + "\u00e9" + run);
  });
});

describe("parseJson objects with many keys", () => {
  it("finds every key and keeps insertion order past the index threshold", () => {
    let text = "{";
    for (let i: i32 = 39; i >= 0; i--) text += (i < 39 ? "," : "") + '"k' + i.toString() + '":' + i.toString();
    const obj = parseJson(text + "}")!.asObject();
    expect(obj.size).toBe(40);
    expect(obj.keys[0]).toBe("k39");
    expect(obj.keys[39]).toBe("k0");
    for (let i: i32 = 0; i < 40; i++) {
      expect(obj.get("k" + i.toString())!.asNumber()).toBe(<f64>i);
      expect(obj.indexOf("k" + i.toString())).toBe(39 - i);
    }
    expect(obj.get("k40")).toBeNull();
  });

  it("rejects a duplicate key found through the index", () => {
    let text = "{";
    for (let i: i32 = 0; i < 20; i++) text += '"k' + i.toString() + '":0,';
    expect(parseJson(text + '"k3":1}')).toBeNull();
    const at = text.length;
    expect(jsonError).toBe("syntax error at line 1 column " + (at + 1).toString() + " (byte " + at.toString() + ') in "k3": duplicate key "k3"');
  });

  it("refuses to add a duplicate key by hand", () => {
    const obj = new JsonObject();
    expect(obj.add("a", parseJson("1")!)).toBe(true);
    expect(obj.add("a", parseJson("2")!)).toBe(false);
    expect(obj.get("a")!.asNumber()).toBe(1.0);
  });
});

describe("parseJson accessors", () => {
  it("traps when a value is read as the wrong kind", () => {
    expect((): void => {
      parseJson('"x"')!.asNumber();
    }).toThrow();
    expect((): void => {
      parseJson("1")!.asString();
    }).toThrow();
    expect((): void => {
      parseJson("[]")!.asObject();
    }).toThrow();
    expect((): void => {
      parseJson("{}")!.asArray();
    }).toThrow();
    expect((): void => {
      parseJson("null")!.asBool();
    }).toThrow();
  });
});

describe("parseJsonUtf8", () => {
  it("decodes UTF-8 text", () => {
    const value = parseJsonUtf8(String.UTF8.encode('{"k":"\u00e9\u4e2d\ud83d\ude00"}'));
    expect(value).not.toBeNull(jsonError);
    expect(value!.asObject().get("k")!.asString()).toBe("\u00e9\u4e2d\ud83d\ude00");
  });

  it("reports offsets in bytes and columns in characters", () => {
    expect(parseJsonUtf8(String.UTF8.encode('{"\u00e9":1,}'))).toBeNull();
    expect(jsonError).toBe("syntax error at line 1 column 8 (byte 8): trailing ',' before '}'");
    expect(jsonErrorOffset).toBe(8);
    expect(parseJsonUtf8(String.UTF8.encode('["\ud83d\ude00",]'))).toBeNull();
    expect(jsonError).toBe("syntax error at line 1 column 6 (byte 8) in \"[1]\": trailing ',' before ']'");
    expect(parseJsonUtf8(String.UTF8.encode('["\u4e2d" x]'))).toBeNull();
    expect(jsonError).toBe("syntax error at line 1 column 6 (byte 7) in \"[0]\": expected ',' or ']', got 'x'");
  });

  it("rejects malformed UTF-8 at the first bad byte", () => {
    expect(parseJsonUtf8(bytesOf([0x22, 0x61, 0xff, 0x22]))).toBeNull();
    expect(jsonError).toBe("syntax error at line 1 column 3 (byte 2): malformed UTF-8");
    expect(jsonErrorOffset).toBe(2);
    expect(parseJsonUtf8(bytesOf([0x7b, 0x0a, 0x20, 0xc3, 0xa9, 0x0a, 0x20, 0x20, 0xc3, 0xa9, 0xff]))).toBeNull();
    expect(jsonError).toBe("syntax error at line 3 column 4 (byte 10): malformed UTF-8");
    expect(jsonErrorLine).toBe(3);
    expect(jsonErrorColumn).toBe(4);
  });

  it("accepts well-formed UTF-8 of every length and rejects each malformed kind", () => {
    expect(invalidUtf8At(bytesOf([0x41, 0xc3, 0xa9, 0xe4, 0xb8, 0xad, 0xf0, 0x9f, 0x98, 0x80]))).toBe(-1);
    expect(invalidUtf8At(bytesOf([0xf4, 0x8f, 0xbf, 0xbf]))).toBe(-1); // U+10FFFF
    expect(invalidUtf8At(bytesOf([0xee, 0x80, 0x80]))).toBe(-1); // U+E000
    expect(invalidUtf8At(bytesOf([]))).toBe(-1);
    expect(invalidUtf8At(bytesOf([0x41, 0x80]))).toBe(1); // lone continuation
    expect(invalidUtf8At(bytesOf([0xc0, 0x80]))).toBe(0); // overlong NUL
    expect(invalidUtf8At(bytesOf([0xc1, 0xbf]))).toBe(0); // overlong
    expect(invalidUtf8At(bytesOf([0xe0, 0x9f, 0xbf]))).toBe(0); // overlong 3-byte
    expect(invalidUtf8At(bytesOf([0xf0, 0x8f, 0xbf, 0xbf]))).toBe(0); // overlong 4-byte
    expect(invalidUtf8At(bytesOf([0xed, 0xa0, 0x80]))).toBe(0); // surrogate U+D800
    expect(invalidUtf8At(bytesOf([0xf4, 0x90, 0x80, 0x80]))).toBe(0); // above U+10FFFF
    expect(invalidUtf8At(bytesOf([0xf5, 0x80, 0x80, 0x80]))).toBe(0);
    expect(invalidUtf8At(bytesOf([0x41, 0xe4, 0xb8]))).toBe(1); // truncated at the end
    expect(invalidUtf8At(bytesOf([0xe4, 0x41, 0xad]))).toBe(0); // bad continuation
    expect(invalidUtf8At(bytesOf([0xc3, 0xa9, 0xc3]))).toBe(2);
  });
});

describe("stringifyJson", () => {
  it("quotes strings with the minimal escapes", () => {
    expect(quoteJson("")).toBe('""');
    expect(quoteJson("abc")).toBe('"abc"');
    expect(quoteJson('a"b\\c')).toBe('"a\\"b\\\\c"');
    expect(quoteJson("\n\r\t\b\f")).toBe('"\\n\\r\\t\\b\\f"');
    expect(quoteJson("\u0001\u001f\u007f")).toBe('"\\u0001\\u001f\u007f"');
    expect(quoteJson("\u00e9\ud83d\ude00/")).toBe('"\u00e9\ud83d\ude00/"');
  });

  it("prints numbers as JSON without a trailing .0", () => {
    expect(formatJsonNumber(0)).toBe("0");
    expect(formatJsonNumber(-0.0)).toBe("0");
    expect(formatJsonNumber(3600)).toBe("3600");
    expect(formatJsonNumber(-42)).toBe("-42");
    expect(formatJsonNumber(0.2)).toBe("0.2");
    expect(formatJsonNumber(-1.5)).toBe("-1.5");
    expect(formatJsonNumber(9007199254740992.0)).toBe("9007199254740992");
    expect(formatJsonNumber(1e21)).toBe("1e+21");
    expect(formatJsonNumber(1.5e-9)).toBe("1.5e-9");
    expect(formatJsonNumber(123.456)).toBe("123.456");
    expect(formatJsonNumber(0.000001)).toBe("0.000001");
    expect(formatJsonNumber(1e-7)).toBe("1e-7");
    expect(formatJsonNumber(1.5e22)).toBe("1.5e+22");
    expect(formatJsonNumber(123456789012345680000.0)).toBe("123456789012345680000");
    expect(formatJsonNumber(100000.0)).toBe("100000");
    // no short form: 17 digits, scaled in f64 (messages only; parsed numbers print as written)
    expect(formatJsonNumber(0.1 + 0.2)).toBe("0.30000000000000004");
    expect(formatJsonNumber(Infinity)).toBe("Infinity");
  });

  it("produces text that parses back to the same tree", () => {
    const text = '{"a":[1,-2.5,1e+21,"\\u0001\\"",true,false,null,{}],"\u00e9":{"b":[]}}';
    expect(stringifyJson(parseJson(text)!)).toBe(text);
    expect(parseJson(text)!.toString()).toBe(text);
  });
});
