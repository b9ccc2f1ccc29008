import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { RouteOptions } from '../../server.js';

const authRoutes: FastifyPluginAsyncZod<RouteOptions> = async () => {};

export default authRoutes;
