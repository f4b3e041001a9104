import { useState, type FormEvent } from "react";
import { useMutation } from "urql";
import { useNavigate } from "react-router";

import { graphql } from "../gql";
import { problemOf } from "../errors";
import { saveSession } from "../session";

const LogIn = graphql(`
  mutation LogIn($input: LogInInput!) {
    logIn(input: $input) { accessToken refreshToken user { email } }
  }
`);

const SignUp = graphql(`
  mutation SignUp($input: SignUpInput!) {
    signUp(input: $input) { accessToken refreshToken user { email } }
  }
`);

/// Log in, or (with `signUp`) create an account and its organization.
export function SignIn({ signUp = false }: { signUp?: boolean }) {
  const navigate = useNavigate();
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [organizationName, setOrganizationName] = useState("");
  const [logInResult, logIn] = useMutation(LogIn);
  const [signUpResult, register] = useMutation(SignUp);
  const result = signUp ? signUpResult : logInResult;
  const problem = problemOf(result.error);

  async function submit(e: FormEvent) {
    e.preventDefault();
    const payload = signUp
      ? (await register({ input: { email, password, organizationName } })).data?.signUp
      : (await logIn({ input: { email, password } })).data?.logIn;
    if (payload) {
      saveSession({ accessToken: payload.accessToken, refreshToken: payload.refreshToken, email: payload.user.email });
      navigate("/datasets");
    }
  }

  const beside = (field: string) =>
    problem?.field === field ? (
      <p role="alert" className="error">
        {problem.message}
      </p>
    ) : null;

  return (
    <main className="narrow">
      <h1>{signUp ? "Create your Tenfold account" : "Log in to Tenfold"}</h1>
      <form onSubmit={submit} aria-label={signUp ? "Sign up" : "Log in"}>
        <label>
          Email
          <input type="email" autoComplete="email" required value={email} onChange={(e) => setEmail(e.target.value)} />
        </label>
        {beside("email")}
        <label>
          Password
          <input
            type="password"
            autoComplete={signUp ? "new-password" : "current-password"}
            required
            minLength={signUp ? 12 : undefined}
            value={password}
            onChange={(e) => setPassword(e.target.value)}
          />
        </label>
        {beside("password")}
        {signUp && (
          <>
            <label>
              Organization
              <input required value={organizationName} onChange={(e) => setOrganizationName(e.target.value)} />
            </label>
            {beside("organizationName")}
          </>
        )}
        {problem && !["email", "password", "organizationName"].includes(problem.field ?? "") && (
          <p role="alert" className="error">
            {problem.message}
          </p>
        )}
        <button type="submit" disabled={result.fetching}>
          {result.fetching ? "One moment…" : signUp ? "Sign up" : "Log in"}
        </button>
      </form>
      <p>
        {signUp ? (
          <a href="/login">I have an account</a>
        ) : (
          <a href="/signup">Create an account</a>
        )}
      </p>
    </main>
  );
}
