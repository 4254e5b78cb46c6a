import type {
	IDataObject,
	IExecuteFunctions,
	IHookFunctions,
	IHttpRequestMethods,
	IHttpRequestOptions,
	ILoadOptionsFunctions,
	INodePropertyOptions,
	IWebhookFunctions,
	JsonObject,
} from 'n8n-workflow';
import { NodeApiError } from 'n8n-workflow';

type Context = IExecuteFunctions | IHookFunctions | ILoadOptionsFunctions | IWebhookFunctions;

export interface WabridgeAnswer {
	status: number;
	headers: Record<string, string | string[] | undefined>;
	bytes: Buffer;
}

export interface RequestOptions {
	/** A JSON body. */
	body?: unknown;
	/** Raw bytes and their type, instead of a JSON body (media uploads). */
	raw?: { data: Buffer; contentType: string };
	qs?: IDataObject;
}

// Long enough for an upload of large media on a slow link.
const TIMEOUT_MS = 300_000;

/**
 * Calls the wabridge flow API with the credential's key. The answer's bytes
 * are kept as they are (a download is a file, not JSON); a non-2xx answer
 * becomes a NodeApiError carrying wabridge's `error.message` and `error.hint`.
 */
export async function wabridgeCall(
	this: Context,
	method: IHttpRequestMethods,
	path: string,
	options: RequestOptions = {},
): Promise<WabridgeAnswer> {
	const credentials = await this.getCredentials('wabridgeApi');
	const base = String(credentials.url ?? '').replace(/\/+$/, '');
	const request: IHttpRequestOptions = {
		method,
		url: `${base}${path}`,
		headers: { accept: 'application/json' },
		returnFullResponse: true,
		ignoreHttpStatusErrors: true,
		encoding: 'arraybuffer',
		json: false,
		skipSslCertificateValidation: credentials.ignoreSslIssues === true,
		// A gateway that stopped answering fails the node instead of holding it.
		timeout: TIMEOUT_MS,
	};
	if (options.qs) request.qs = options.qs;
	if (options.raw) {
		request.body = options.raw.data;
		request.headers!['content-type'] = options.raw.contentType;
	} else if (options.body !== undefined) {
		request.body = JSON.stringify(options.body);
		request.headers!['content-type'] = 'application/json';
	}
	const answer = (await this.helpers.httpRequestWithAuthentication.call(
		this,
		'wabridgeApi',
		request,
	)) as { statusCode: number; headers: WabridgeAnswer['headers']; body: unknown };
	const bytes = toBuffer(answer.body);
	if (answer.statusCode < 200 || answer.statusCode > 299) {
		throw refusal(this, method, path, answer.statusCode, bytes);
	}
	return { status: answer.statusCode, headers: answer.headers ?? {}, bytes };
}

/** Like wabridgeCall, for a JSON answer (an empty answer is `{}`). */
export async function wabridgeJson(
	this: Context,
	method: IHttpRequestMethods,
	path: string,
	options: RequestOptions = {},
): Promise<IDataObject> {
	const answer = await wabridgeCall.call(this, method, path, options);
	if (answer.bytes.length === 0) return {};
	return JSON.parse(answer.bytes.toString('utf8')) as IDataObject;
}

function toBuffer(body: unknown): Buffer {
	if (body === undefined || body === null) return Buffer.alloc(0);
	if (Buffer.isBuffer(body)) return body;
	if (body instanceof ArrayBuffer) return Buffer.from(body);
	if (ArrayBuffer.isView(body)) return Buffer.from(body.buffer, body.byteOffset, body.byteLength);
	if (typeof body === 'string') return Buffer.from(body, 'utf8');
	return Buffer.from(JSON.stringify(body), 'utf8');
}

function refusal(
	context: Context,
	method: string,
	path: string,
	status: number,
	bytes: Buffer,
): NodeApiError {
	let parsed: JsonObject = {};
	try {
		parsed = JSON.parse(bytes.toString('utf8')) as JsonObject;
	} catch {
		parsed = { body: bytes.toString('utf8').slice(0, 500) };
	}
	const error = (parsed.error ?? {}) as { code?: string; message?: string; hint?: string };
	const message = error.message ?? `wabridge answered ${status} to ${method} ${path}`;
	return new NodeApiError(context.getNode(), parsed, {
		message: error.code ? `${message} (${error.code})` : message,
		// Without a hint, n8n would repeat the message here: say what answered instead.
		description: error.hint ?? `wabridge answered ${status} to ${method} ${path}`,
		httpCode: String(status),
	});
}

/** The account's WABAs, for a WABA ID picker. */
export async function wabaOptions(this: ILoadOptionsFunctions): Promise<INodePropertyOptions[]> {
	const me = await wabridgeJson.call(this, 'GET', '/api/v1/me');
	const ids = (me.wabaIds as string[] | undefined) ?? [];
	return ids.map((id) => ({ name: id, value: id }));
}

/** Every sender phone number in the account's WABAs, for a phone number picker. */
export async function phoneNumberOptions(
	this: ILoadOptionsFunctions,
): Promise<INodePropertyOptions[]> {
	const me = await wabridgeJson.call(this, 'GET', '/api/v1/me');
	const options: INodePropertyOptions[] = [];
	for (const waba of (me.wabaIds as string[] | undefined) ?? []) {
		options.push(...(await phoneNumbersOf.call(this, waba)));
	}
	return options;
}

/** The phone numbers of the WABA chosen in the node's `wabaId`, for a picker that depends on it. */
export async function wabaPhoneNumberOptions(
	this: ILoadOptionsFunctions,
): Promise<INodePropertyOptions[]> {
	const waba = String(this.getCurrentNodeParameter('wabaId') ?? '').trim();
	if (!waba) return [];
	return await phoneNumbersOf.call(this, waba);
}

async function phoneNumbersOf(
	this: ILoadOptionsFunctions,
	waba: string,
): Promise<INodePropertyOptions[]> {
	const answer = await wabridgeJson.call(
		this,
		'GET',
		`/api/v1/business-accounts/${encodeURIComponent(waba)}/phone-numbers`,
	);
	return ((answer.phoneNumbers as IDataObject[] | undefined) ?? []).map((phone) => {
		const label = [phone.displayPhoneNumber, phone.verifiedName].filter(Boolean).join(' · ');
		return {
			name: label ? `${label} (${String(phone.id)})` : String(phone.id),
			value: String(phone.id),
			description: `WABA ${waba}`,
		};
	});
}

/** A path segment, escaped. */
export function seg(value: unknown): string {
	return encodeURIComponent(String(value ?? '').trim());
}
