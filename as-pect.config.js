// as-pect 8.1 runner config: unit tests of the host-free AssemblyScript code in assembly/__tests__/.
// `asp` compiles each spec with ./as-pect.asconfig.json (its default --as-config).
import { createRequire } from "node:module";
import { NodeKind } from "assemblyscript";
import AspectTransform from "@as-pect/transform";
import { createStrictEqualsMember } from "@as-pect/transform/lib/createStrictEqualsMember.js";
import { createAddReflectedValueKeyValuePairsMember } from "@as-pect/transform/lib/createAddReflectedValueKeyValuePairsMember.js";

// @as-pect/transform 8.1.0 was built against AssemblyScript 0.27 and inlines its NodeKind numbers;
// 0.28 inserted a kind before them, so the shipped transform skips every class and `expect<SomeClass>`
// fails to compile ("__aspectAddReflectedValueKeyValuePairs does not exist"). This replaces its traversal
// with one that uses 0.28's NodeKind, and shows the member builders fields and methods under their 0.27 kinds.
const KIND_027 = { FieldDeclaration: 54, MethodDeclaration: 58 };
const transformVersion = createRequire(import.meta.url)("@as-pect/transform/package.json").version;
if (transformVersion === "8.1.0" && NodeKind.ClassDeclaration !== 51) {
  AspectTransform.prototype.afterParse = function afterParse(parser) {
    for (const source of parser.sources) addAspectMembers(source.statements);
  };
}

function addAspectMembers(statements) {
  for (const statement of statements) {
    if (statement.kind === NodeKind.ClassDeclaration) {
      const members = statement.members;
      const kinds = members.map((member) => member.kind);
      for (const member of members) {
        if (member.kind === NodeKind.FieldDeclaration) member.kind = KIND_027.FieldDeclaration;
        else if (member.kind === NodeKind.MethodDeclaration) member.kind = KIND_027.MethodDeclaration;
      }
      const strictEquals = createStrictEqualsMember(statement);
      const reflect = createAddReflectedValueKeyValuePairsMember(statement);
      members.forEach((member, i) => (member.kind = kinds[i]));
      members.push(strictEquals, reflect);
    } else if (statement.kind === NodeKind.NamespaceDeclaration) {
      addAspectMembers(statement.members);
    }
  }
}

export default {
  /** Each spec file is compiled and run as its own module. */
  entries: ["assembly/__tests__/**/*.spec.ts", "filters/*/__tests__/**/*.spec.ts"],
  /** Files added to every spec compilation. */
  include: ["assembly/__tests__/**/*.include.ts"],
  disclude: [/node_modules/],
  /** The code under test imports nothing from the host: only as-pect's own imports are provided. */
  async instantiate(memory, createImports, instantiate, binary) {
    return instantiate(binary, createImports({ env: { memory } }));
  },
  outputBinary: false,
};
