import { CombinedError } from "@urql/core";
import { GraphQLError } from "graphql";
import { describe, expect, it } from "vitest";

import { problemOf } from "./errors";

describe("problemOf", () => {
  it("keeps the API's words and the input they are about", () => {
    const error = new CombinedError({
      graphQLErrors: [new GraphQLError("the password is 12 characters or more", { extensions: { code: "BAD_USER_INPUT", field: "password" } })],
    });
    expect(problemOf(error)).toEqual({ message: "the password is 12 characters or more", field: "password", code: "BAD_USER_INPUT" });
  });

  it("says what to check when the server cannot be reached", () => {
    const problem = problemOf(new CombinedError({ networkError: new Error("Failed to fetch") }));
    expect(problem?.message).toContain("check that tenfold is running");
    expect(problem?.field).toBeUndefined();
  });

  it("is nothing when there is no error", () => {
    expect(problemOf(undefined)).toBeNull();
  });
});
