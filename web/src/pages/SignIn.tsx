import { useState, type FormEvent } from "react";
import { parseToken, signIn, signOut } from "../session.js";
import { navigate } from "../router.js";
import { PageTitle, TextAreaField, useSession } from "../ui.js";

/** Paste a token from `npm run --silent token -- --user NAME [--admin]`. */
export function SignIn({ next }: { next: string }) {
  const session = useSession();
  const [token, setToken] = useState("");
  const [error, setError] = useState<string | undefined>();

  const submit = (e: FormEvent) => {
    e.preventDefault();
    const parsed = parseToken(token);
    if (typeof parsed === "string") {
      setError(parsed);
      return;
    }
    signIn(parsed);
    // Only paths of this app: never an open redirect.
    navigate(next.startsWith("/") && !next.startsWith("//") ? next : "/");
  };

  return (
    <>
      <PageTitle>Sign in</PageTitle>
      {session && (
        <p role="status">
          You are signed in as <strong>{session.user}</strong>
          {session.admin ? " (administrator)" : ""}.{" "}
          <button type="button" className="link" onClick={signOut}>
            Sign out
          </button>
        </p>
      )}
      <form onSubmit={submit} noValidate className="stack">
        <TextAreaField
          label="Access token"
          hint="Print one with npm run --silent token -- --user alice (add --admin to manage locations and events) and paste it here. It is kept for this browser tab only."
          name="token"
          rows={4}
          required
          spellCheck={false}
          autoComplete="off"
          value={token}
          error={error}
          onChange={(e) => setToken(e.target.value)}
        />
        <button type="submit">Sign in</button>
      </form>
    </>
  );
}
