import type { ReactNode } from "react";
import { BrowserRouter, Navigate, NavLink, Route, Routes, useNavigate } from "react-router";

import { Datasets } from "./pages/Datasets";
import { DatasetVersion } from "./pages/DatasetVersion";
import { SignIn } from "./pages/SignIn";
import { Upload } from "./pages/Upload";
import { loadSession, saveSession } from "./session";

/// Pages behind a session: without one, the log-in page.
function SignedIn({ children }: { children: ReactNode }) {
  const navigate = useNavigate();
  const session = loadSession();
  if (!session) return <Navigate to="/login" replace />;
  return (
    <div className="shell">
      <nav aria-label="Main">
        <strong>Tenfold</strong>
        <NavLink to="/datasets" end>
          Datasets
        </NavLink>
        <NavLink to="/datasets/upload">Upload</NavLink>
        <span className="who">{session.email}</span>
        <button
          type="button"
          onClick={() => {
            saveSession(null);
            navigate("/login");
          }}
        >
          Log out
        </button>
      </nav>
      <main>{children}</main>
    </div>
  );
}

export function App() {
  return (
    <BrowserRouter>
      <Routes>
        <Route path="/login" element={<SignIn />} />
        <Route path="/signup" element={<SignIn signUp />} />
        <Route
          path="/datasets"
          element={
            <SignedIn>
              <Datasets />
            </SignedIn>
          }
        />
        <Route
          path="/datasets/upload"
          element={
            <SignedIn>
              <Upload />
            </SignedIn>
          }
        />
        <Route
          path="/datasets/versions/:id"
          element={
            <SignedIn>
              <DatasetVersion />
            </SignedIn>
          }
        />
        <Route path="*" element={<Navigate to={loadSession() ? "/datasets" : "/login"} replace />} />
      </Routes>
    </BrowserRouter>
  );
}
