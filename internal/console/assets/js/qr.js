// A QR code encoder (ISO/IEC 18004, byte mode, error correction level M,
// versions 1-40) for the MFA setup link, drawn on a <canvas>: the console
// loads nothing from elsewhere, so it carries its own. Written from the
// standard's algorithm; the browser tests decode its output.

// Error-correction codewords per block and number of blocks, level M, by version.
const ECC_PER_BLOCK = [-1, 10, 16, 26, 18, 24, 16, 18, 22, 22, 26, 30, 22, 22, 24, 24, 28, 28, 26, 26, 26, 26, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28];
const BLOCKS = [-1, 1, 1, 1, 2, 2, 4, 4, 4, 5, 5, 5, 8, 9, 9, 10, 10, 11, 13, 14, 16, 17, 17, 18, 20, 21, 23, 25, 26, 28, 29, 31, 33, 35, 37, 38, 40, 43, 45, 47, 49];
const FORMAT_LEVEL_M = 0;

function rawDataModules(ver) {
	let n = (16 * ver + 128) * ver + 64;
	if (ver >= 2) {
		const align = Math.floor(ver / 7) + 2;
		n -= (25 * align - 10) * align - 55;
		if (ver >= 7) n -= 36;
	}
	return n;
}

function dataCodewords(ver) {
	return Math.floor(rawDataModules(ver) / 8) - ECC_PER_BLOCK[ver] * BLOCKS[ver];
}

// GF(2^8) multiplication modulo x^8 + x^4 + x^3 + x^2 + 1.
function gfMul(x, y) {
	let z = 0;
	for (let i = 7; i >= 0; i--) {
		z = (z << 1) ^ ((z >>> 7) * 0x11d);
		z ^= ((y >>> i) & 1) * x;
	}
	return z & 0xff;
}

function rsDivisor(degree) {
	const result = new Array(degree).fill(0);
	result[degree - 1] = 1;
	let root = 1;
	for (let i = 0; i < degree; i++) {
		for (let j = 0; j < degree; j++) {
			result[j] = gfMul(result[j], root);
			if (j + 1 < degree) result[j] ^= result[j + 1];
		}
		root = gfMul(root, 0x02);
	}
	return result;
}

function rsRemainder(data, divisor) {
	const result = new Array(divisor.length).fill(0);
	for (const b of data) {
		const factor = b ^ result.shift();
		result.push(0);
		divisor.forEach((coef, i) => { result[i] ^= gfMul(coef, factor); });
	}
	return result;
}

function alignmentPositions(ver, size) {
	if (ver === 1) return [];
	const n = Math.floor(ver / 7) + 2;
	const step = Math.floor((ver * 8 + n * 3 + 5) / (n * 4 - 4)) * 2;
	const out = [6];
	for (let pos = size - 7; out.length < n; pos -= step) out.splice(1, 0, pos);
	return out;
}

const MASKS = [
	(x, y) => (x + y) % 2 === 0,
	(x, y) => y % 2 === 0,
	(x) => x % 3 === 0,
	(x, y) => (x + y) % 3 === 0,
	(x, y) => (Math.floor(x / 3) + Math.floor(y / 2)) % 2 === 0,
	(x, y) => ((x * y) % 2) + ((x * y) % 3) === 0,
	(x, y) => (((x * y) % 2) + ((x * y) % 3)) % 2 === 0,
	(x, y) => (((x + y) % 2) + ((x * y) % 3)) % 2 === 0,
];

/** Encodes text (UTF-8, byte mode, level M). Returns an array of rows of booleans (true: dark). */
export function encodeQR(text) {
	const bytes = new TextEncoder().encode(text);
	let ver = 1;
	for (; ver <= 40; ver++) {
		const countBits = ver < 10 ? 8 : 16;
		if (4 + countBits + bytes.length * 8 <= dataCodewords(ver) * 8) break;
	}
	if (ver > 40) throw new Error('qr: text too long');
	const size = ver * 4 + 17;
	const capacity = dataCodewords(ver);

	// Data bits: mode, count, bytes, terminator, padding.
	const bits = [];
	const put = (val, len) => { for (let i = len - 1; i >= 0; i--) bits.push((val >>> i) & 1); };
	put(0b0100, 4);
	put(bytes.length, ver < 10 ? 8 : 16);
	bytes.forEach((b) => put(b, 8));
	put(0, Math.min(4, capacity * 8 - bits.length));
	put(0, (8 - (bits.length % 8)) % 8);
	for (let pad = 0xec; bits.length < capacity * 8; pad ^= 0xec ^ 0x11) put(pad, 8);
	const data = [];
	for (let i = 0; i < bits.length; i += 8) data.push(bits.slice(i, i + 8).reduce((a, b) => (a << 1) | b, 0));

	// Blocks with their error correction, interleaved.
	const numBlocks = BLOCKS[ver];
	const eccLen = ECC_PER_BLOCK[ver];
	const rawCodewords = Math.floor(rawDataModules(ver) / 8);
	const numShort = numBlocks - (rawCodewords % numBlocks);
	const shortLen = Math.floor(rawCodewords / numBlocks);
	const divisor = rsDivisor(eccLen);
	const blocks = [];
	for (let i = 0, k = 0; i < numBlocks; i++) {
		const dat = data.slice(k, k + shortLen - eccLen + (i < numShort ? 0 : 1));
		k += dat.length;
		const ecc = rsRemainder(dat, divisor);
		if (i < numShort) dat.push(0);
		blocks.push(dat.concat(ecc));
	}
	const codewords = [];
	for (let i = 0; i < blocks[0].length; i++) {
		blocks.forEach((b, j) => {
			if (i !== shortLen - eccLen || j >= numShort) codewords.push(b[i]);
		});
	}

	const modules = Array.from({ length: size }, () => new Array(size).fill(false));
	const isFn = Array.from({ length: size }, () => new Array(size).fill(false));
	const setFn = (x, y, dark) => { modules[y][x] = dark; isFn[y][x] = true; };

	for (let i = 0; i < size; i++) {
		setFn(6, i, i % 2 === 0);
		setFn(i, 6, i % 2 === 0);
	}
	for (const [cx, cy] of [[3, 3], [size - 4, 3], [3, size - 4]]) {
		for (let dy = -4; dy <= 4; dy++) {
			for (let dx = -4; dx <= 4; dx++) {
				const x = cx + dx;
				const y = cy + dy;
				if (x >= 0 && x < size && y >= 0 && y < size) {
					const d = Math.max(Math.abs(dx), Math.abs(dy));
					setFn(x, y, d !== 2 && d !== 4);
				}
			}
		}
	}
	const align = alignmentPositions(ver, size);
	align.forEach((ay, i) => align.forEach((ax, j) => {
		const last = align.length - 1;
		if ((i === 0 && j === 0) || (i === 0 && j === last) || (i === last && j === 0)) return;
		for (let dy = -2; dy <= 2; dy++) {
			for (let dx = -2; dx <= 2; dx++) setFn(ax + dx, ay + dy, Math.max(Math.abs(dx), Math.abs(dy)) !== 1);
		}
	}));
	const drawFormat = (mask) => {
		const d = (FORMAT_LEVEL_M << 3) | mask;
		let rem = d;
		for (let i = 0; i < 10; i++) rem = (rem << 1) ^ ((rem >>> 9) * 0x537);
		const f = ((d << 10) | rem) ^ 0x5412;
		const bit = (i) => ((f >>> i) & 1) !== 0;
		for (let i = 0; i <= 5; i++) setFn(8, i, bit(i));
		setFn(8, 7, bit(6));
		setFn(8, 8, bit(7));
		setFn(7, 8, bit(8));
		for (let i = 9; i < 15; i++) setFn(14 - i, 8, bit(i));
		for (let i = 0; i < 8; i++) setFn(size - 1 - i, 8, bit(i));
		for (let i = 8; i < 15; i++) setFn(8, size - 15 + i, bit(i));
		setFn(8, size - 8, true);
	};
	drawFormat(0);
	if (ver >= 7) {
		let rem = ver;
		for (let i = 0; i < 12; i++) rem = (rem << 1) ^ ((rem >>> 11) * 0x1f25);
		const v = (ver << 12) | rem;
		for (let i = 0; i < 18; i++) {
			const dark = ((v >>> i) & 1) !== 0;
			const a = size - 11 + (i % 3);
			const b = Math.floor(i / 3);
			setFn(a, b, dark);
			setFn(b, a, dark);
		}
	}

	// Codewords in the zigzag order.
	let i = 0;
	for (let right = size - 1; right >= 1; right -= 2) {
		if (right === 6) right = 5;
		for (let vert = 0; vert < size; vert++) {
			for (let j = 0; j < 2; j++) {
				const x = right - j;
				const upward = ((right + 1) & 2) === 0;
				const y = upward ? size - 1 - vert : vert;
				if (!isFn[y][x] && i < codewords.length * 8) {
					modules[y][x] = ((codewords[i >>> 3] >>> (7 - (i & 7))) & 1) !== 0;
					i++;
				}
			}
		}
	}

	// The mask with the lowest penalty.
	const apply = (m) => {
		for (let y = 0; y < size; y++) {
			for (let x = 0; x < size; x++) {
				if (!isFn[y][x] && MASKS[m](x, y)) modules[y][x] = !modules[y][x];
			}
		}
	};
	let best = 0;
	let bestScore = Infinity;
	for (let m = 0; m < 8; m++) {
		apply(m);
		drawFormat(m);
		const score = penalty(modules, size);
		if (score < bestScore) {
			best = m;
			bestScore = score;
		}
		apply(m);
	}
	apply(best);
	drawFormat(best);
	return modules;
}

function penalty(m, size) {
	let score = 0;
	const line = (get) => {
		let run = 1;
		for (let i = 1; i <= size; i++) {
			if (i < size && get(i) === get(i - 1)) {
				run++;
			} else {
				if (run >= 5) score += run - 2;
				run = 1;
			}
		}
		for (let i = 0; i + 11 <= size; i++) {
			const s = Array.from({ length: 11 }, (_, k) => (get(i + k) ? 1 : 0)).join('');
			if (s === '10111010000' || s === '00001011101') score += 40;
		}
	};
	let dark = 0;
	for (let y = 0; y < size; y++) {
		line((x) => m[y][x]);
		line((x) => m[x][y]);
		for (let x = 0; x < size; x++) {
			if (m[y][x]) dark++;
			if (x + 1 < size && y + 1 < size && m[y][x] === m[y][x + 1] && m[y][x] === m[y + 1][x] && m[y][x] === m[y + 1][x + 1]) score += 3;
		}
	}
	score += Math.floor(Math.abs(dark * 20 - size * size * 10) / (size * size)) * 10;
	return score;
}

/** Returns a <canvas> showing text as a QR code, scale pixels per module, with a 4-module quiet zone. */
export function qrCanvas(text, { scale = 4, label = 'QR code' } = {}) {
	const m = encodeQR(text);
	const n = m.length + 8;
	const c = document.createElement('canvas');
	c.width = n * scale;
	c.height = n * scale;
	c.className = 'qr';
	c.setAttribute('role', 'img');
	c.setAttribute('aria-label', label);
	const g = c.getContext('2d');
	g.fillStyle = '#fff';
	g.fillRect(0, 0, c.width, c.height);
	g.fillStyle = '#000';
	m.forEach((row, y) => row.forEach((dark, x) => {
		if (dark) g.fillRect((x + 4) * scale, (y + 4) * scale, scale, scale);
	}));
	return c;
}
