// Vite turns `import url from './x.ts?worker&url'` into the URL of a separately bundled,
// content-hashed file under /assets/: what AudioWorklet.addModule needs under script-src 'self'.
declare module '*?worker&url' {
  const url: string;
  export default url;
}
