// Draws the Photoshop plugin's icons (panel 23 px, plugin list 24 px, each at 1x and 2x, for dark
// and light themes) from one SVG with sharp. Run once; the PNGs are committed.
import sharp from 'sharp';

const glyph = (colour) => `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24">
  <rect x="2.5" y="12.5" width="7" height="7" fill="none" stroke="${colour}" stroke-width="1.6"/>
  <rect x="8.5" y="4.5" width="13" height="13" fill="none" stroke="${colour}" stroke-width="1.6" stroke-dasharray="2.2 1.4"/>
  <path d="M9 15 L15.5 8.5 M11.5 8.5 H15.5 V12.5" fill="none" stroke="${colour}" stroke-width="1.6" stroke-linecap="round" stroke-linejoin="round"/>
</svg>`;

const themes = { dark: '#e6e6e6', light: '#4b4b4b' };
for (const [kind, size] of [['panel', 23], ['plugin', 24]]) {
  for (const [theme, colour] of Object.entries(themes)) {
    for (const scale of [1, 2]) {
      const file = `plugins/photoshop/icons/${kind}-${theme}${scale === 2 ? '@2x' : ''}.png`;
      await sharp(Buffer.from(glyph(colour)), { density: 72 * scale * (size / 24) * 4 })
        .resize(size * scale, size * scale)
        .png()
        .toFile(file);
    }
  }
}
