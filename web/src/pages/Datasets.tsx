import { Link } from "react-router";
import { useQuery } from "urql";

import { graphql } from "../gql";
import { problemOf } from "../errors";

const DatasetsQuery = graphql(`
  query Datasets {
    datasets(first: 100) {
      nodes {
        id
        name
        family
        createdAt
        latestVersion { id version status fileName problemCount }
      }
    }
  }
`);

const FAMILY: Record<string, string> = {
  IMAGE_CLASSIFICATION: "Image classification",
  CHAT: "Customer-service chat",
  RECOMMENDATION: "Recommendation",
};

/// The organization's datasets with the state of their latest version.
export function Datasets() {
  const [{ data, fetching, error }] = useQuery({ query: DatasetsQuery });
  const problem = problemOf(error);
  if (problem) return <p role="alert" className="error">{problem.message}</p>;
  if (fetching && !data) return <p aria-busy="true">Loading datasets…</p>;
  const datasets = data?.datasets.nodes ?? [];
  if (datasets.length === 0) {
    return (
      <section>
        <h1>Datasets</h1>
        <p className="empty">
          No datasets yet. <Link to="/datasets/upload">Upload</Link> an image ZIP (one folder per class), a chat JSONL
          or an interactions CSV to start.
        </p>
      </section>
    );
  }
  return (
    <section>
      <h1>Datasets</h1>
      <p>
        <Link to="/datasets/upload">Upload a dataset</Link>
      </p>
      <table>
        <thead>
          <tr>
            <th>Name</th>
            <th>Family</th>
            <th>Latest version</th>
            <th>State</th>
          </tr>
        </thead>
        <tbody>
          {datasets.map((d) => (
            <tr key={d.id}>
              <td>{d.latestVersion ? <Link to={`/datasets/versions/${d.latestVersion.id}`}>{d.name}</Link> : d.name}</td>
              <td>{FAMILY[d.family] ?? d.family}</td>
              <td>{d.latestVersion ? `v${d.latestVersion.version} · ${d.latestVersion.fileName}` : "—"}</td>
              <td>
                <span className={`badge ${d.latestVersion?.status.toLowerCase() ?? ""}`}>{d.latestVersion?.status ?? "no upload"}</span>
                {d.latestVersion && d.latestVersion.problemCount > 0 && ` ${d.latestVersion.problemCount} problems`}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
