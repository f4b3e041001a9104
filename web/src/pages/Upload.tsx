import { useRef, useState, type FormEvent } from "react";
import { useNavigate } from "react-router";
import { Upload as TusUpload, type DetailedError } from "tus-js-client";

import { loadSession } from "../session";

const FAMILIES = [
  { value: "IMAGE_CLASSIFICATION", label: "Image classification — a ZIP with one folder per class" },
  { value: "CHAT", label: "Customer-service chat — JSONL conversations or an intents CSV" },
  { value: "RECOMMENDATION", label: "Recommendation — an interactions CSV (user_id,item_id[,rating])" },
];

/// The API's words for a refused upload (its JSON error body), else the client's.
function words(error: Error): string {
  const body = (error as DetailedError).originalResponse?.getBody();
  if (body) {
    try {
      const parsed = JSON.parse(body) as { error?: { message?: string } | string };
      const message = typeof parsed.error === "string" ? parsed.error : parsed.error?.message;
      if (message) return message;
    } catch {
      // not JSON: fall through to the client's message
    }
  }
  return error.message;
}

/// Uploads a dataset over tus (resumable: a dropped connection continues
/// where it stopped), with a progress bar; then opens the new version.
export function Upload() {
  const navigate = useNavigate();
  const [name, setName] = useState("");
  const [family, setFamily] = useState(FAMILIES[0].value);
  const [redact, setRedact] = useState(false);
  const [file, setFile] = useState<File | null>(null);
  const [progress, setProgress] = useState<number | null>(null);
  const [problem, setProblem] = useState<string | null>(null);
  const upload = useRef<TusUpload | null>(null);

  function submit(e: FormEvent) {
    e.preventDefault();
    if (!file) {
      setProblem("Choose a file to upload.");
      return;
    }
    setProblem(null);
    setProgress(0);
    let version: string | null = null;
    const tus = new TusUpload(file, {
      endpoint: "/v1/uploads",
      chunkSize: 8 * 1024 * 1024,
      retryDelays: [0, 1000, 3000, 5000],
      removeFingerprintOnSuccess: true,
      metadata: { filename: file.name, family, dataset: name || file.name.replace(/\.[^.]*$/, ""), redact: redact ? "true" : "false" },
      onBeforeRequest: (req) => {
        const token = loadSession()?.accessToken;
        if (token) req.setHeader("Authorization", `Bearer ${token}`);
      },
      onAfterResponse: (_req, res) => {
        version = res.getHeader("Tenfold-Dataset-Version") ?? version;
      },
      onProgress: (sent, total) => setProgress(total > 0 ? sent / total : 0),
      onError: (error) => {
        setProgress(null);
        setProblem(words(error));
      },
      onSuccess: () => {
        setProgress(1);
        navigate(version ? `/datasets/versions/${version}` : "/datasets");
      },
    });
    upload.current = tus;
    // Resume an upload of the same file that was cut off earlier.
    void tus.findPreviousUploads().then((previous) => {
      if (previous.length > 0) tus.resumeFromPreviousUpload(previous[0]);
      tus.start();
    });
  }

  return (
    <section className="narrow-left">
      <h1>Upload a dataset</h1>
      <form onSubmit={submit} aria-label="Upload a dataset">
        <label>
          Name
          <input value={name} placeholder="the file's name" onChange={(e) => setName(e.target.value)} />
        </label>
        <label>
          Family
          <select value={family} onChange={(e) => setFamily(e.target.value)}>
            {FAMILIES.map((f) => (
              <option key={f.value} value={f.value}>
                {f.label}
              </option>
            ))}
          </select>
        </label>
        <label>
          File
          <input type="file" required onChange={(e) => setFile(e.target.files?.[0] ?? null)} />
        </label>
        <label className="inline">
          <input type="checkbox" checked={redact} onChange={(e) => setRedact(e.target.checked)} />
          Redact emails, phone numbers and card numbers before storing
        </label>
        {progress !== null && (
          <progress max={1} value={progress} aria-label="Upload progress">
            {Math.round(progress * 100)}%
          </progress>
        )}
        {problem && (
          <p role="alert" className="error">
            {problem}
          </p>
        )}
        <button type="submit" disabled={progress !== null && progress < 1}>
          Upload
        </button>
      </form>
    </section>
  );
}
