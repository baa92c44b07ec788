// Assets imported from TypeScript resolve to their emitted URL.
declare module '*.png' {
  const src: string;
  export default src;
}
declare module '*.svg' {
  const src: string;
  export default src;
}
