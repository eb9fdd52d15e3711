import { z } from 'zod';

/**
 * The Docker API's answers (and Podman's compatible ones), as far as outpost reads them, checked
 * when they arrive: a field either engine may leave out or send as null is optional here, so
 * what reads them handles its absence, and an answer without what outpost needs is refused whole.
 */

const labels = z.record(z.string(), z.string());

/** One entry of a container's NetworkSettings.Networks. */
const EndpointSettings = z.object({
  NetworkID: z.string().nullish(),
  IPAddress: z.string().nullish(),
  GlobalIPv6Address: z.string().nullish(),
});

const PortBinding = z.object({ HostIp: z.string().nullish(), HostPort: z.string().nullish() });

/** `GET /containers/{id}/json`. */
export const InspectAnswer = z.object({
  Id: z.string(),
  Name: z.string(),
  Image: z.string().nullish(),
  State: z.object({ Running: z.boolean().nullish(), Pid: z.number().nullish() }),
  Config: z.object({ Image: z.string().nullish(), Labels: labels.nullish() }).nullish(),
  HostConfig: z.object({ NetworkMode: z.string().nullish() }).nullish(),
  NetworkSettings: z
    .object({
      Networks: z.record(z.string(), EndpointSettings).nullish(),
      Ports: z.record(z.string(), z.array(PortBinding).nullish()).nullish(),
    })
    .nullish(),
});
export type InspectAnswer = z.infer<typeof InspectAnswer>;

/** `GET /containers/json`: only the ids are read; the rest comes from each inspect. */
export const ContainerList = z.array(z.object({ Id: z.string() }));

/** One entry of `GET /networks`. */
export const NetworkListEntry = z.object({
  Id: z.string(),
  Name: z.string(),
  Driver: z.string().nullish(),
  Internal: z.boolean().nullish(),
  Options: z.record(z.string(), z.string()).nullish(),
  IPAM: z.object({ Config: z.array(z.object({ Subnet: z.string().nullish() })).nullish() }).nullish(),
});
export type NetworkListEntry = z.infer<typeof NetworkListEntry>;

/** `GET /networks`: an entry without an id or a name is left out, not the whole list. */
export const NetworkList = z.array(z.unknown()).transform((entries) =>
  entries.flatMap((e) => {
    const parsed = NetworkListEntry.safeParse(e);
    return parsed.success ? [parsed.data] : [];
  }),
);

/** One line of `GET /events`, as far as the inventory reads it. */
export const DockerEvent = z.object({
  Type: z.string().optional(),
  Action: z.string().optional(),
  Actor: z.object({ ID: z.string().optional(), Attributes: labels.optional() }).optional(),
});
export type DockerEvent = z.infer<typeof DockerEvent>;

/** The first 200 characters of an answer, for a log line or an error. */
export function answerExcerpt(answer: unknown): string {
  // JSON.stringify gives no string for undefined, though its type says it does.
  return answer === undefined ? 'undefined' : JSON.stringify(answer).slice(0, 200);
}
