/**
 * The address of an incident's page in the viewer, for people who follow a link from a log line, a manifest,
 * an API answer or an alert: `<http.external_url>/ui/#/incidents/<id>`. The route after `#` belongs to the
 * viewer's page (src/api/ui); this is its one spelling. Pure.
 */

/** The incident's page, or undefined when no `http.external_url` is configured (the daemon cannot know its own address). */
export function incidentPageUrl(externalUrl: string | undefined, id: string): string | undefined {
  return externalUrl === undefined ? undefined : `${externalUrl}/ui/#/incidents/${encodeURIComponent(id)}`;
}
