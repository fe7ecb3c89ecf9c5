import type {
  ProviderContext,
  ProviderDescriptor,
  TicketProvider,
  TicketProviderFactory,
  WebhookSupport,
} from './port.js';

/**
 * A factory whose adapter code (and its SDK) loads on the first call, not at start-up: the
 * descriptor (the form) is plain data and stays available at once.
 */
export function lazyTicketProvider(
  descriptor: ProviderDescriptor,
  load: () => Promise<(context: ProviderContext) => TicketProvider>,
  webhook?: WebhookSupport,
): TicketProviderFactory {
  return {
    descriptor,
    ...(webhook ? { webhook } : {}),
    create(context) {
      let instance: Promise<TicketProvider> | undefined;
      const get = () => {
        instance ??= load().then((make) => make(context));
        return instance;
      };
      return {
        kind: descriptor.kind,
        verify: async (routing) => (await get()).verify(routing),
        listProjects: async () => (await get()).listProjects(),
        listTicketTypes: async (project) => (await get()).listTicketTypes(project),
        describeFields: async (project, type) => (await get()).describeFields(project, type),
        findTicket: async (key, routing) => (await get()).findTicket(key, routing),
        createTicket: async (input, key) => (await get()).createTicket(input, key),
        getTicket: async (key) => (await get()).getTicket(key),
      };
    },
  };
}
