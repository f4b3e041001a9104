import type { CombinedError } from "@urql/core";

/// What went wrong, in the API's words, and the input it names (the server
/// sets `extensions.field` on bad input), so a form can show it beside it.
export interface Problem {
  message: string;
  field?: string;
  code?: string;
}

export function problemOf(error: CombinedError | undefined | null): Problem | null {
  if (!error) return null;
  const first = error.graphQLErrors[0];
  if (first) {
    const ext = first.extensions ?? {};
    return {
      message: first.message,
      field: typeof ext.field === "string" ? ext.field : undefined,
      code: typeof ext.code === "string" ? ext.code : undefined,
    };
  }
  if (error.networkError) {
    return { message: `The server could not be reached (${error.networkError.message}); check that tenfold is running.` };
  }
  return { message: error.message };
}
