// giveElementsASize makes every element report a fixed, plausible size. jsdom lays nothing
// out, and @grafana/ui's Combobox virtualises its menu: it draws only the options that fit
// in the menu's measured height, which is zero in jsdom. Call it in beforeAll.
export function giveElementsASize(width = 320, height = 240) {
  const rect = { x: 0, y: 0, top: 0, left: 0, bottom: height, right: width, width, height };
  Object.defineProperty(Element.prototype, 'getBoundingClientRect', {
    configurable: true,
    value: () => ({ ...rect, toJSON: () => rect }),
  });
  for (const [prop, value] of [
    ['clientWidth', width],
    ['clientHeight', height],
    ['offsetWidth', width],
    ['offsetHeight', height],
  ] as const) {
    Object.defineProperty(HTMLElement.prototype, prop, { configurable: true, get: () => value });
  }
}
