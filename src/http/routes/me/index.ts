import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { RouteOptions } from '../../server.js';

const meRoutes: FastifyPluginAsyncZod<RouteOptions> = async () => {};

export default meRoutes;
