import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { RouteOptions } from '../../server.js';

const auditRoutes: FastifyPluginAsyncZod<RouteOptions> = async () => {};

export default auditRoutes;
