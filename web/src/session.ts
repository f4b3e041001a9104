// The signed-in session: tokens from logIn/signUp, kept for the browser tab
// (sessionStorage: closing the tab signs out; nothing lingers on a shared
// machine).

export interface Session {
  accessToken: string;
  refreshToken: string;
  email: string;
}

const KEY = "tenfold.session";

export function loadSession(): Session | null {
  const raw = sessionStorage.getItem(KEY);
  if (!raw) return null;
  try {
    const s = JSON.parse(raw) as Session;
    return s.accessToken && s.refreshToken ? s : null;
  } catch {
    return null;
  }
}

export function saveSession(s: Session | null): void {
  if (s) sessionStorage.setItem(KEY, JSON.stringify(s));
  else sessionStorage.removeItem(KEY);
}
