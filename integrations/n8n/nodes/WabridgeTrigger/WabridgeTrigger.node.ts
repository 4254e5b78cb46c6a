import type {
	IDataObject,
	IHookFunctions,
	INodeType,
	INodeTypeDescription,
	IWebhookFunctions,
	IWebhookResponseData,
} from 'n8n-workflow';
import { NodeConnectionTypes, NodeOperationError } from 'n8n-workflow';
import { Webhook } from 'standardwebhooks';

import { seg, wabaOptions, wabaPhoneNumberOptions, wabridgeJson } from '../Wabridge/transport';

/** The event types of CONTRACT §5.1 offered in the picker (docs/events.md has them all). */
const EVENT_TYPES: Array<[string, string]> = [
	['Message Received', 'whatsapp.message.received'],
	['Message Status (Sent, Delivered, Read, Failed)', 'whatsapp.message.status'],
	['Message Echo (Sent From the WhatsApp Business App)', 'whatsapp.message.echo'],
	['Message Error', 'whatsapp.message.error'],
	['Message Standby', 'whatsapp.message.standby'],
	['Any Template Event', 'whatsapp.template.*'],
	['Template Status', 'whatsapp.template.status'],
	['Template Quality', 'whatsapp.template.quality'],
	['Template Category', 'whatsapp.template.category'],
	['Account Update', 'whatsapp.account.update'],
	['Account Alert', 'whatsapp.account.alert'],
	['Phone Number Quality', 'whatsapp.phone_number.quality'],
	['Phone Number Name', 'whatsapp.phone_number.name'],
	['Call', 'whatsapp.call'],
	['User Preference', 'whatsapp.user.preference'],
	['Flow', 'whatsapp.flow'],
	['Handover', 'whatsapp.handover'],
	['Everything', '*'],
];

/** The `status` values of CONTRACT §5.1's `statuses` filter (wabridge refuses others). */
const STATUSES: Array<[string, string]> = [
	['Accepted', 'accepted'],
	['Sent', 'sent'],
	['Delivered', 'delivered'],
	['Read', 'read'],
	['Played', 'played'],
	['Failed', 'failed'],
	['Deleted', 'deleted'],
	['Warning', 'warning'],
	['Call Ringing', 'ringing'],
	['Call Rejected', 'rejected'],
	['Call Completed', 'completed'],
	['Call Missed', 'missed'],
];

/** Meta's inbound message `type` values, for the `messageTypes` filter. */
const MESSAGE_TYPES: Array<[string, string]> = [
	['Audio', 'audio'],
	['Button (Template Quick Reply)', 'button'],
	['Contacts', 'contacts'],
	['Document', 'document'],
	['Image', 'image'],
	['Interactive (Button or List Reply, Flow)', 'interactive'],
	['Location', 'location'],
	['Order', 'order'],
	['Reaction', 'reaction'],
	['Request Welcome', 'request_welcome'],
	['Sticker', 'sticker'],
	['System', 'system'],
	['Text', 'text'],
	['Unsupported', 'unsupported'],
	['Video', 'video'],
];

/**
 * Deliveries already output, per listener, so that a retry of one (wabridge
 * retries until it sees a 2xx in time) does not start the workflow twice.
 * Held in memory only: bounded, forgotten on restart.
 */
const seen = new Map<string, Set<string>>();
const SEEN_MAX = 2000;

function firstTime(listener: string, webhookId: string): boolean {
	let ids = seen.get(listener);
	if (!ids) {
		ids = new Set();
		seen.set(listener, ids);
	}
	if (ids.has(webhookId)) return false;
	ids.add(webhookId);
	if (ids.size > SEEN_MAX) ids.delete(ids.values().next().value as string);
	return true;
}

/** CONTRACT §5.1's listener filters, each left out when empty. */
const FILTERS = ['phoneNumberIds', 'statuses', 'messageTypes'] as const;
type Filter = (typeof FILTERS)[number];

interface Wanted {
	wabaId: string;
	events: string[];
	filters: Record<Filter, string[]>;
}

function wanted(context: IHookFunctions): Wanted {
	const wabaId = String(context.getNodeParameter('wabaId', '')).trim();
	if (!wabaId) throw new NodeOperationError(context.getNode(), 'Choose the WABA ID to listen to');
	const picked = context.getNodeParameter('events', []) as string[];
	const more = String(context.getNodeParameter('moreEvents', '') ?? '');
	const events = [...picked, ...splitList(more)];
	if (events.length === 0) {
		throw new NodeOperationError(context.getNode(), 'Choose at least one event type');
	}
	const filters = {} as Record<Filter, string[]>;
	for (const name of FILTERS) filters[name] = listParameter(context, name);
	return { wabaId, events: [...new Set(events)], filters };
}

/** A multiOptions parameter; an expression may give a comma-separated string instead. */
function listParameter(context: IHookFunctions, name: string): string[] {
	const value = context.getNodeParameter(name, []) as unknown;
	const items = Array.isArray(value) ? value.map(String) : splitList(String(value ?? ''));
	return [...new Set(items.map((s) => s.trim()).filter(Boolean))];
}

/** The listener's `filters` as wabridge takes them: only the lists that are set. */
function filtersBody(want: Wanted): IDataObject | undefined {
	const body: IDataObject = {};
	for (const name of FILTERS) if (want.filters[name].length > 0) body[name] = want.filters[name];
	return Object.keys(body).length > 0 ? body : undefined;
}

function splitList(text: string): string[] {
	return text
		.split(/[\s,]+/)
		.map((s) => s.trim())
		.filter(Boolean);
}

/** wabridge keeps a listener's URL WHATWG-normalised; compare them parsed. */
function sameUrl(a: unknown, b: string): boolean {
	try {
		return new URL(String(a)).href === new URL(b).href;
	} catch {
		return false;
	}
}

function sameSet(a: unknown, b: string[]): boolean {
	const left = Array.isArray(a) ? (a as string[]) : [];
	return left.length === b.length && [...left].sort().join('\n') === [...b].sort().join('\n');
}

export class WabridgeTrigger implements INodeType {
	description: INodeTypeDescription = {
		displayName: 'wabridge Trigger',
		name: 'wabridgeTrigger',
		icon: { light: 'file:wabridge.svg', dark: 'file:wabridge.dark.svg' },
		group: ['trigger'],
		version: 1,
		subtitle: '={{($parameter["events"] || []).join(", ")}}',
		description:
			'Starts the workflow on WhatsApp events from a wabridge gateway (messages, statuses, templates, …)',
		defaults: { name: 'wabridge Trigger' },
		inputs: [],
		outputs: [NodeConnectionTypes.Main],
		credentials: [{ name: 'wabridgeApi', required: true }],
		webhooks: [
			{
				name: 'default',
				httpMethod: 'POST',
				responseMode: 'onReceived',
				path: 'webhook',
			},
		],
		properties: [
			{
				displayName:
					'Activating the workflow registers a listener at wabridge for this webhook; deactivating it removes the listener',
				name: 'notice',
				type: 'notice',
				default: '',
			},
			{
				displayName: 'WABA Name or ID',
				name: 'wabaId',
				type: 'options',
				typeOptions: { loadOptionsMethod: 'getWabas' },
				default: '',
				required: true,
				description:
					'The WhatsApp Business Account whose events start the workflow. Choose from the list, or specify an ID using an <a href="https://docs.n8n.io/code/expressions/">expression</a>.',
			},
			{
				displayName: 'Events',
				name: 'events',
				type: 'multiOptions',
				options: EVENT_TYPES.map(([name, value]) => ({ name, value })),
				default: ['whatsapp.message.received'],
				description: 'The event types that start the workflow',
			},
			{
				displayName: 'More Event Types',
				name: 'moreEvents',
				type: 'string',
				default: '',
				placeholder: 'whatsapp.call.status, whatsapp.group.*',
				description:
					'Further event types or prefix patterns, comma-separated (every type is listed in wabridge\'s docs/events.md)',
			},
			{
				displayName: 'Phone Number Names or IDs',
				name: 'phoneNumberIds',
				type: 'multiOptions',
				typeOptions: { loadOptionsMethod: 'getPhoneNumbers', loadOptionsDependsOn: ['wabaId'] },
				default: [],
				description:
					'Only events for these phone numbers of the WABA; none for every number. Choose from the list, or specify IDs using an <a href="https://docs.n8n.io/code/expressions/">expression</a>.',
			},
			{
				displayName: 'Statuses',
				name: 'statuses',
				type: 'multiOptions',
				options: STATUSES.map(([name, value]) => ({ name, value })),
				default: [],
				description:
					'Only status events with one of these statuses (message and call statuses); none for every status. Other event types are not affected.',
			},
			{
				displayName: 'Message Types',
				name: 'messageTypes',
				type: 'multiOptions',
				options: MESSAGE_TYPES.map(([name, value]) => ({ name, value })),
				default: [],
				description:
					'Only received messages of these types; none for every type. Other event types are not affected.',
			},
		],
	};

	methods = {
		loadOptions: {
			getWabas: wabaOptions,
			getPhoneNumbers: wabaPhoneNumberOptions,
		},
	};

	webhookMethods = {
		default: {
			async checkExists(this: IHookFunctions): Promise<boolean> {
				const url = this.getNodeWebhookUrl('default') as string;
				const data = this.getWorkflowStaticData('node');
				const want = wanted(this);
				const { listeners } = (await wabridgeJson.call(this, 'GET', '/api/v1/listeners')) as {
					listeners?: IDataObject[];
				};
				let found = false;
				for (const listener of listeners ?? []) {
					if (!sameUrl(listener.url, url)) continue;
					const filters = (listener.filters ?? {}) as IDataObject;
					const current =
						!found &&
						listener.wabaId === want.wabaId &&
						sameSet(listener.events, want.events) &&
						FILTERS.every((name) => sameSet(filters[name], want.filters[name])) &&
						!listener.stoppedReason;
					if (!current) {
						// Registered with other settings, stopped by a 410, or a
						// duplicate: n8n creates the one wanted if none is left.
						await wabridgeJson.call(this, 'DELETE', `/api/v1/listeners/${seg(listener.id)}`);
						continue;
					}
					const full = await wabridgeJson.call(this, 'GET', `/api/v1/listeners/${seg(listener.id)}`);
					if (typeof full.secret !== 'string') {
						throw new NodeOperationError(this.getNode(), 'wabridge answered without the listener\'s secret');
					}
					data.listenerId = listener.id;
					data.secret = full.secret;
					found = true;
				}
				return found;
			},

			async create(this: IHookFunctions): Promise<boolean> {
				const url = this.getNodeWebhookUrl('default') as string;
				const want = wanted(this);
				const body: IDataObject = { wabaId: want.wabaId, events: want.events, url };
				const filters = filtersBody(want);
				if (filters) body.filters = filters;
				const listener = await wabridgeJson.call(this, 'POST', '/api/v1/listeners', { body });
				if (typeof listener.id !== 'string' || typeof listener.secret !== 'string') {
					throw new NodeOperationError(this.getNode(), 'wabridge answered without a listener id and secret');
				}
				const data = this.getWorkflowStaticData('node');
				data.listenerId = listener.id;
				data.secret = listener.secret;
				return true;
			},

			async delete(this: IHookFunctions): Promise<boolean> {
				const data = this.getWorkflowStaticData('node');
				const id = data.listenerId;
				if (id) {
					try {
						await wabridgeJson.call(this, 'DELETE', `/api/v1/listeners/${seg(id)}`);
					} catch (error) {
						const status = (error as { httpCode?: string }).httpCode;
						if (status !== '404') return false;
					}
				}
				delete data.listenerId;
				delete data.secret;
				return true;
			},
		},
	};

	async webhook(this: IWebhookFunctions): Promise<IWebhookResponseData> {
		const req = this.getRequestObject() as ReturnType<IWebhookFunctions['getRequestObject']> & {
			rawBody?: Buffer;
		};
		const res = this.getResponseObject();
		const data = this.getWorkflowStaticData('node');
		const secret = typeof data.secret === 'string' ? data.secret : '';
		const refuse = (why: string): IWebhookResponseData => {
			res.status(401).json({ error: why });
			return { noWebhookResponse: true };
		};
		if (!secret) return refuse('this trigger has no listener secret: reactivate the workflow');
		const raw = req.rawBody;
		if (!raw) return refuse('the raw body is not available to check the signature');
		const headers: Record<string, string> = {};
		for (const name of ['webhook-id', 'webhook-timestamp', 'webhook-signature']) {
			const value = req.headers[name];
			headers[name] = Array.isArray(value) ? value.join(',') : String(value ?? '');
		}
		let event: IDataObject;
		try {
			event = new Webhook(secret).verify(raw.toString('utf8'), headers) as IDataObject;
		} catch {
			return refuse('the signature does not verify');
		}
		if (!firstTime(String(data.listenerId ?? ''), headers['webhook-id'])) {
			// A retry of a delivery already output: answered, not output again.
			res.status(200).json({ duplicate: true });
			return { noWebhookResponse: true };
		}
		return { workflowData: [this.helpers.returnJsonArray([event])] };
	}
}
