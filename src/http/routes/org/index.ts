import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { RouteOptions } from '../../server.js';

const orgRoutes: FastifyPluginAsyncZod<RouteOptions> = async () => {};

export default orgRoutes;
