/* eslint-disable */
import * as types from './graphql';
import type { TypedDocumentNode as DocumentNode } from '@graphql-typed-document-node/core';

/**
 * Map of all GraphQL operations in the project.
 *
 * This map has several performance disadvantages:
 * 1. It is not tree-shakeable, so it will include all operations in the project.
 * 2. It is not minifiable, so the string of a GraphQL query will be multiple times inside the bundle.
 * 3. It does not support dead code elimination, so it will add unused operations.
 *
 * Therefore it is highly recommended to use the babel or swc plugin for production.
 * Learn more about it here: https://the-guild.dev/graphql/codegen/plugins/presets/preset-client#reducing-bundle-size
 */
type Documents = {
    "\n  query DatasetVersion($id: ID!) {\n    node(id: $id) {\n      ... on DatasetVersion {\n        id\n        version\n        status\n        fileName\n        stats\n        preview\n        problemCount\n        problems { location code message hint }\n        warnings { location code message }\n      }\n    }\n  }\n": typeof types.DatasetVersionDocument,
    "\n  query Datasets {\n    datasets(first: 100) {\n      nodes {\n        id\n        name\n        family\n        createdAt\n        latestVersion { id version status fileName problemCount }\n      }\n    }\n  }\n": typeof types.DatasetsDocument,
    "\n  mutation LogIn($input: LogInInput!) {\n    logIn(input: $input) { accessToken refreshToken user { email } }\n  }\n": typeof types.LogInDocument,
    "\n  mutation SignUp($input: SignUpInput!) {\n    signUp(input: $input) { accessToken refreshToken user { email } }\n  }\n": typeof types.SignUpDocument,
};
const documents: Documents = {
    "\n  query DatasetVersion($id: ID!) {\n    node(id: $id) {\n      ... on DatasetVersion {\n        id\n        version\n        status\n        fileName\n        stats\n        preview\n        problemCount\n        problems { location code message hint }\n        warnings { location code message }\n      }\n    }\n  }\n": types.DatasetVersionDocument,
    "\n  query Datasets {\n    datasets(first: 100) {\n      nodes {\n        id\n        name\n        family\n        createdAt\n        latestVersion { id version status fileName problemCount }\n      }\n    }\n  }\n": types.DatasetsDocument,
    "\n  mutation LogIn($input: LogInInput!) {\n    logIn(input: $input) { accessToken refreshToken user { email } }\n  }\n": types.LogInDocument,
    "\n  mutation SignUp($input: SignUpInput!) {\n    signUp(input: $input) { accessToken refreshToken user { email } }\n  }\n": types.SignUpDocument,
};

/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 *
 *
 * @example
 * ```ts
 * const query = graphql(`query GetUser($id: ID!) { user(id: $id) { name } }`);
 * ```
 *
 * The query argument is unknown!
 * Please regenerate the types.
 */
export function graphql(source: string): unknown;

/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query DatasetVersion($id: ID!) {\n    node(id: $id) {\n      ... on DatasetVersion {\n        id\n        version\n        status\n        fileName\n        stats\n        preview\n        problemCount\n        problems { location code message hint }\n        warnings { location code message }\n      }\n    }\n  }\n"): (typeof documents)["\n  query DatasetVersion($id: ID!) {\n    node(id: $id) {\n      ... on DatasetVersion {\n        id\n        version\n        status\n        fileName\n        stats\n        preview\n        problemCount\n        problems { location code message hint }\n        warnings { location code message }\n      }\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query Datasets {\n    datasets(first: 100) {\n      nodes {\n        id\n        name\n        family\n        createdAt\n        latestVersion { id version status fileName problemCount }\n      }\n    }\n  }\n"): (typeof documents)["\n  query Datasets {\n    datasets(first: 100) {\n      nodes {\n        id\n        name\n        family\n        createdAt\n        latestVersion { id version status fileName problemCount }\n      }\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation LogIn($input: LogInInput!) {\n    logIn(input: $input) { accessToken refreshToken user { email } }\n  }\n"): (typeof documents)["\n  mutation LogIn($input: LogInInput!) {\n    logIn(input: $input) { accessToken refreshToken user { email } }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation SignUp($input: SignUpInput!) {\n    signUp(input: $input) { accessToken refreshToken user { email } }\n  }\n"): (typeof documents)["\n  mutation SignUp($input: SignUpInput!) {\n    signUp(input: $input) { accessToken refreshToken user { email } }\n  }\n"];

export function graphql(source: string) {
  return (documents as any)[source] ?? {};
}

export type DocumentType<TDocumentNode extends DocumentNode<any, any>> = TDocumentNode extends DocumentNode<  infer TType,  any>  ? TType  : never;