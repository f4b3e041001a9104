import { useEffect } from "react";
import { useParams } from "react-router";
import { useQuery } from "urql";

import { graphql } from "../gql";
import { problemOf } from "../errors";

const VersionQuery = graphql(`
  query DatasetVersion($id: ID!) {
    node(id: $id) {
      ... on DatasetVersion {
        id
        version
        status
        fileName
        stats
        preview
        problemCount
        problems { location code message hint }
        warnings { location code message }
      }
    }
  }
`);

interface Thumbnail {
  name: string;
  dataUrl: string;
}

/// One uploaded version: its state (followed while validation runs), the
/// problems by place with what to do, statistics and a preview.
export function DatasetVersion() {
  const { id = "" } = useParams();
  const [{ data, error }, refetch] = useQuery({ query: VersionQuery, variables: { id } });
  const version = data?.node && "status" in data.node ? data.node : null;
  const pending = version?.status === "PENDING";
  useEffect(() => {
    if (!pending) return;
    const timer = setInterval(() => refetch({ requestPolicy: "network-only" }), 1000);
    return () => clearInterval(timer);
  }, [pending, refetch]);

  const problem = problemOf(error);
  if (problem) return <p role="alert" className="error">{problem.message}</p>;
  if (!data) return <p aria-busy="true">Loading…</p>;
  if (!version) return <p className="empty">No such dataset version in this organization.</p>;
  const stats = (version.stats ?? {}) as Record<string, unknown>;
  const preview = (version.preview ?? {}) as { thumbnails?: Record<string, Thumbnail[]>; rows?: Record<string, unknown>[] };
  return (
    <section>
      <h1>
        {version.fileName} · v{version.version}{" "}
        <span className={`badge ${version.status.toLowerCase()}`}>{pending ? "validating…" : version.status}</span>
      </h1>
      {version.problemCount > 0 && (
        <>
          <h2>
            {version.problemCount} problem{version.problemCount === 1 ? "" : "s"} to fix
          </h2>
          <table aria-label="Problems">
            <thead>
              <tr>
                <th>Where</th>
                <th>What</th>
                <th>What to do</th>
              </tr>
            </thead>
            <tbody>
              {version.problems.map((p, i) => (
                <tr key={i}>
                  <td>{p.location}</td>
                  <td>{p.message}</td>
                  <td>{p.hint}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
      {version.warnings.length > 0 && (
        <>
          <h2>Warnings</h2>
          <ul>
            {version.warnings.map((w, i) => (
              <li key={i}>
                {w.location}: {w.message}
              </li>
            ))}
          </ul>
        </>
      )}
      {Object.keys(stats).length > 0 && (
        <>
          <h2>Statistics</h2>
          <dl className="stats">
            {Object.entries(stats)
              .filter(([, v]) => typeof v !== "object" || v === null)
              .map(([k, v]) => (
                <div key={k}>
                  <dt>{k.replace(/_/g, " ")}</dt>
                  <dd>{String(v)}</dd>
                </div>
              ))}
          </dl>
        </>
      )}
      {preview.thumbnails && (
        <>
          <h2>Examples</h2>
          {Object.entries(preview.thumbnails).map(([label, images]) => (
            <figure key={label} className="thumbs">
              <figcaption>{label}</figcaption>
              {images.map((t) => (
                <img key={t.name} src={t.dataUrl} alt={`${label}: ${t.name}`} width={48} height={48} />
              ))}
            </figure>
          ))}
        </>
      )}
      {preview.rows && preview.rows.length > 0 && (
        <>
          <h2>First rows</h2>
          <table aria-label="First rows">
            <thead>
              <tr>
                {Object.keys(preview.rows[0]).map((k) => (
                  <th key={k}>{k}</th>
                ))}
              </tr>
            </thead>
            <tbody>
              {preview.rows.map((row, i) => (
                <tr key={i}>
                  {Object.values(row).map((v, j) => (
                    <td key={j}>{typeof v === "string" ? v : JSON.stringify(v)}</td>
                  ))}
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
    </section>
  );
}
