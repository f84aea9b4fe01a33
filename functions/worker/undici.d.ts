// The two undici modules the Cog client imports by path (cog.ts says why), typed as undici types them.
declare module 'undici/lib/dispatcher/client.js' {
  import type { Client } from 'undici';

  const Connection: typeof Client;
  export default Connection;
}

declare module 'undici/lib/api/api-request.js' {
  import type { Dispatcher } from 'undici';

  /** `Dispatcher.request`, called with the dispatcher as `this`. */
  function request(this: Dispatcher, options: Dispatcher.RequestOptions): Promise<Dispatcher.ResponseData>;
  export default request;
}
