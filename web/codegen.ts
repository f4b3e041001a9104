import type { CodegenConfig } from "@graphql-codegen/cli";

// Typed operations from the schema `tenfold schema` prints (committed as
// schema.graphql; a test fails when it is stale).
const config: CodegenConfig = {
  schema: "schema.graphql",
  documents: ["src/**/*.tsx", "src/**/*.ts", "!src/gql/**/*"],
  generates: {
    "src/gql/": {
      preset: "client",
      config: { useTypeImports: true, enumsAsTypes: true, scalars: { DateTime: "string", JSON: "unknown", ID: "string" } },
    },
  },
};

export default config;
