// Training photos for the map's error predictor (issue 7 research, scripts/map-research/README.md):
// real photos from Debian packages (the only source of many HR photos reachable here), none of
// them in Set5/Set14 (OpenCV's baboon.jpg and lena.jpg are left out: they are Set14 images).
//
//   node scripts/map-research/prepare-photos.mjs WORKDIR
//
// Downloads the packages with `apt-get download` into WORKDIR/debs, unpacks them, and writes
//   WORKDIR/whole/<name>.png   each photo downscaled ≥ 1.5× (long side ≤ 480, Lanczos, multiple of 4):
//                              cleaner than the JPEG at full size, about Set14's size
//   WORKDIR/crops/<name>.png   two 320×240 crops of each wallpaper downscaled 2.2× and 3.2× (seeded):
//                              more texture at other scales (fidelity-only cases)
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';

const PACKAGES = ['mate-backgrounds', 'plasma-workspace-wallpapers', 'lomiri-wallpapers-20.04', 'opencv-doc'];
const PHOTOS = [
  "usr/share/backgrounds/Infinite-Sea_by_Aury88.jpg",
  "usr/share/backgrounds/Kleiber_by_Lukas_Baubkus.jpg",
  "usr/share/backgrounds/mate/nature/Aqua.jpg",
  "usr/share/backgrounds/mate/nature/Blinds.jpg",
  "usr/share/backgrounds/mate/nature/Dune.jpg",
  "usr/share/backgrounds/mate/nature/FreshFlower.jpg",
  "usr/share/backgrounds/mate/nature/Garden.jpg",
  "usr/share/backgrounds/mate/nature/GreenMeadow.jpg",
  "usr/share/backgrounds/mate/nature/LadyBird.jpg",
  "usr/share/backgrounds/mate/nature/RainDrops.jpg",
  "usr/share/backgrounds/mate/nature/Storm.jpg",
  "usr/share/backgrounds/mate/nature/TwoWings.jpg",
  "usr/share/backgrounds/mate/nature/Wood.jpg",
  "usr/share/backgrounds/mate/nature/YellowFlower.jpg",
  "usr/share/wallpapers/BytheWater/contents/images/2560x1600.jpg",
  "usr/share/wallpapers/ColdRipple/contents/images/2560x1600.jpg",
  "usr/share/wallpapers/ColorfulCups/contents/images/2560x1600.jpg",
  "usr/share/wallpapers/DarkestHour/contents/images/2560x1600.jpg",
  "usr/share/wallpapers/EveningGlow/contents/images/2560x1600.jpg",
  "usr/share/wallpapers/FallenLeaf/contents/images/2560x1600.jpg",
  "usr/share/wallpapers/Grey/contents/images/2560x1600.jpg",
  "usr/share/wallpapers/Kite/contents/images/2560x1600.jpg",
  "usr/share/wallpapers/OneStandsOut/contents/images/2560x1600.jpg",
  "usr/share/wallpapers/Path/contents/images/2560x1600.jpg",
  "usr/share/wallpapers/summer_1am/contents/images/2560x1600.jpg",
  "usr/share/doc/opencv-doc/examples/data/fruits.jpg",
  "usr/share/doc/opencv-doc/examples/data/building.jpg",
  "usr/share/doc/opencv-doc/examples/data/home.jpg",
  "usr/share/doc/opencv-doc/examples/data/board.jpg",
  "usr/share/doc/opencv-doc/examples/data/messi5.jpg",
  "usr/share/doc/opencv-doc/examples/data/smarties.png",
  "usr/share/doc/opencv-doc/examples/data/squirrel_cls.jpg",
  "usr/share/doc/opencv-doc/opencv4/html/pexels_double_decker_bus.jpg",
  "usr/share/doc/opencv-doc/opencv4/html/boat.jpg",
  "usr/share/doc/opencv-doc/examples/data/leuvenA.jpg",
  "usr/share/doc/opencv-doc/examples/data/aloeL.jpg",
  "usr/share/doc/opencv-doc/examples/data/chicky_512.png",
  "usr/share/doc/opencv-doc/examples/alphamat/input_images/plant.jpg",
  "usr/share/doc/opencv-doc/examples/hfs/data/000.jpg"
];

const work = process.argv[2];
if (!work) {
  process.stderr.write('usage: prepare-photos.mjs WORKDIR\n');
  process.exit(2);
}
const debs = path.join(work, 'debs');
const root = path.join(work, 'root');
fs.mkdirSync(debs, { recursive: true });
for (const p of PACKAGES) {
  if (!fs.readdirSync(debs).some((f) => f.startsWith(`${p}_`))) execFileSync('apt-get', ['download', p], { cwd: debs, stdio: 'inherit' });
}
for (const f of fs.readdirSync(debs)) execFileSync('dpkg', ['-x', path.join(debs, f), root]);

const nameOf = (f, prefix) => prefix + (f.includes('/wallpapers/') ? f.split('/')[3] : path.basename(f).replace(/\.\w+$/, '')).replace(/[^A-Za-z0-9]/g, '');
for (const dir of ['whole', 'crops']) fs.mkdirSync(path.join(work, dir), { recursive: true });
let seed = 7;
const random = () => {
  seed = (seed * 1103515245 + 12345) & 0x7fffffff;
  return seed / 0x7fffffff;
};
for (const rel of PHOTOS) {
  const file = path.join(root, rel);
  const { width, height } = await sharp(file).metadata();
  const long = Math.max(width, height);
  const scale = Math.min(480, Math.round(long / 1.5)) / long;
  let w = Math.round(width * scale);
  let h = Math.round(height * scale);
  w -= w % 4;
  h -= h % 4;
  await sharp(file).removeAlpha().toColourspace('srgb').resize(w, h, { fit: 'fill', kernel: 'lanczos3' }).png().toFile(path.join(work, 'whole', `${nameOf(rel, 'X_')}.png`));
  if (rel.includes('opencv-doc')) continue;
  for (const div of [2.2, 3.2]) {
    const W = Math.round(width / div);
    const H = Math.round(height / div);
    const small = await sharp(file).removeAlpha().toColourspace('srgb').resize(W, H, { fit: 'fill', kernel: 'lanczos3' }).png().toBuffer();
    for (let k = 0; k < 2; k++) {
      const cw = Math.min(W, 320) - (Math.min(W, 320) % 4);
      const ch = Math.min(H, 240) - (Math.min(H, 240) % 4);
      const left = Math.floor(random() * (W - cw));
      const top = Math.floor(random() * (H - ch));
      await sharp(small).extract({ left, top, width: cw, height: ch }).png().toFile(path.join(work, 'crops', `${nameOf(rel, 'Y_')}d${Math.round(div * 10)}c${k}.png`));
    }
  }
}
