import { useEffect, useId, useRef, useState, type InputHTMLAttributes, type ReactNode, type SelectHTMLAttributes, type TextareaHTMLAttributes } from "react";
import { onSessionChange, currentSession, type Session } from "./session.js";
import { describe, type Problem } from "./errors.js";

/** The signed-in user, re-rendering on sign-in and sign-out. */
export function useSession(): Session | undefined {
  const [session, setSession] = useState(currentSession);
  useEffect(() => onSessionChange(setSession), []);
  return session;
}

// The first page of a visit keeps the browser's own focus; later pages move it.
let navigated = false;

/** A page's heading, focused after in-app navigation so screen readers announce the new page. */
export function PageTitle({ children }: { children: ReactNode }) {
  const ref = useRef<HTMLHeadingElement>(null);
  useEffect(() => {
    if (navigated) ref.current?.focus();
    navigated = true;
  }, []);
  return (
    <h1 ref={ref} tabIndex={-1}>
      {children}
    </h1>
  );
}

interface Labelling {
  label: string;
  error?: string;
  hint?: string;
}

/**
 * A form control with its label, hint and error tied to it (htmlFor,
 * aria-describedby, aria-invalid), so screen readers read them together.
 */
function Labelled({ label, error, hint, control }: Labelling & { control: (a11y: { id: string; "aria-invalid"?: true; "aria-describedby"?: string }) => ReactNode }) {
  const id = useId();
  const described = [hint ? `${id}-hint` : "", error ? `${id}-error` : ""].filter(Boolean).join(" ") || undefined;
  return (
    <div className="field">
      <label htmlFor={id}>{label}</label>
      {hint && (
        <p className="hint" id={`${id}-hint`}>
          {hint}
        </p>
      )}
      {control({ id, "aria-invalid": error ? true : undefined, "aria-describedby": described })}
      {error && (
        <p className="field-error" id={`${id}-error`} role="alert">
          {error}
        </p>
      )}
    </div>
  );
}

export function Field({ label, error, hint, ...input }: Labelling & InputHTMLAttributes<HTMLInputElement>) {
  return <Labelled label={label} error={error} hint={hint} control={(a11y) => <input {...input} {...a11y} />} />;
}

export function SelectField({ label, error, hint, children, ...select }: Labelling & SelectHTMLAttributes<HTMLSelectElement>) {
  return (
    <Labelled
      label={label}
      error={error}
      hint={hint}
      control={(a11y) => (
        <select {...select} {...a11y}>
          {children}
        </select>
      )}
    />
  );
}

export function TextAreaField({ label, error, hint, ...area }: Labelling & TextareaHTMLAttributes<HTMLTextAreaElement>) {
  return <Labelled label={label} error={error} hint={hint} control={(a11y) => <textarea {...area} {...a11y} />} />;
}

/** A form's submit button: disabled and marked busy while its request is out. */
export function SubmitButton({ pending, label, busyLabel }: { pending: boolean; label: string; busyLabel: string }) {
  return (
    <button type="submit" disabled={pending} aria-busy={pending}>
      {pending ? busyLabel : label}
    </button>
  );
}

/** A failed call's message, announced at once (role=alert). */
export function ErrorMessage({ problem }: { problem: Problem | undefined }) {
  if (!problem) return null;
  return (
    <p className="error" role="alert">
      {problem.message}
    </p>
  );
}

export function Loading({ what }: { what: string }) {
  return (
    <p role="status" className="muted">
      Loading {what}…
    </p>
  );
}

/** A form's request: `run` clears the last problem, marks it pending, and keeps what went wrong. */
export function useRequest() {
  const [pending, setPending] = useState(false);
  const [problem, setProblem] = useState<Problem | undefined>();
  const run = async <T,>(call: () => Promise<T>): Promise<T | undefined> => {
    setPending(true);
    setProblem(undefined);
    try {
      return await call();
    } catch (err) {
      setProblem(describe(err));
      return undefined;
    } finally {
      setPending(false);
    }
  };
  return { pending, problem, run };
}
