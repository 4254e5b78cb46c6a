import type {
	IDataObject,
	IExecuteFunctions,
	INodeExecutionData,
	INodeProperties,
	INodeType,
	INodeTypeDescription,
} from 'n8n-workflow';
import { NodeConnectionTypes, NodeOperationError } from 'n8n-workflow';

import { phoneNumberOptions, seg, wabaOptions, wabridgeCall, wabridgeJson } from './transport';

/**
 * The operations. Each calls one wabridge flow API operation; tests/it/n8n.rs
 * in the wabridge repository checks every call's method and path against
 * static/openapi.json, so an API change cannot silently break this node.
 */
type Operation =
	| 'sendMessage'
	| 'markRead'
	| 'getMessageStatus'
	| 'getWindow'
	| 'listTemplates'
	| 'listPhoneNumbers'
	| 'uploadMedia'
	| 'downloadMedia';

const MEDIA_TYPES = ['image', 'video', 'audio', 'document', 'sticker'];

const only = (operation: Operation[], extra: IDataObject = {}) => ({
	show: { operation, ...extra },
});

const messageFields: INodeProperties[] = [
	{
		displayName: 'To',
		name: 'to',
		type: 'string',
		default: '',
		required: true,
		placeholder: '+420 777 123 456',
		description:
			"The recipient's phone number (any common E.164 writing), or a business-scoped user ID (e.g. US.13491208655302741918), which is sent as `recipient`",
		displayOptions: only(['sendMessage']),
	},
	{
		displayName: 'Message Type',
		name: 'messageType',
		type: 'options',
		noDataExpression: true,
		options: [
			{ name: 'Audio', value: 'audio' },
			{ name: 'Document', value: 'document' },
			{ name: 'Image', value: 'image' },
			{ name: 'Interactive (Buttons, List, …)', value: 'interactive' },
			{ name: 'Location', value: 'location' },
			{ name: 'Message Object (JSON)', value: 'json' },
			{ name: 'Reaction', value: 'reaction' },
			{ name: 'Sticker', value: 'sticker' },
			{ name: 'Template', value: 'template' },
			{ name: 'Text', value: 'text' },
			{ name: 'Video', value: 'video' },
		],
		default: 'text',
		displayOptions: only(['sendMessage']),
	},
	{
		displayName: 'Text',
		name: 'text',
		type: 'string',
		typeOptions: { rows: 3 },
		default: '',
		required: true,
		displayOptions: only(['sendMessage'], { messageType: ['text'] }),
	},
	{
		displayName: 'Preview URL',
		name: 'previewUrl',
		type: 'boolean',
		default: false,
		description: 'Whether WhatsApp shows a preview of the first link in the text',
		displayOptions: only(['sendMessage'], { messageType: ['text'] }),
	},
	{
		displayName: 'Template Name',
		name: 'templateName',
		type: 'string',
		default: '',
		required: true,
		displayOptions: only(['sendMessage'], { messageType: ['template'] }),
	},
	{
		displayName: 'Language Code',
		name: 'languageCode',
		type: 'string',
		default: 'en_US',
		required: true,
		displayOptions: only(['sendMessage'], { messageType: ['template'] }),
	},
	{
		displayName: 'Components (JSON)',
		name: 'components',
		type: 'json',
		default: '[]',
		description:
			"The template's parameters as Meta's `components` array (header, body, button parameters)",
		displayOptions: only(['sendMessage'], { messageType: ['template'] }),
	},
	{
		displayName: 'Media Source',
		name: 'mediaSource',
		type: 'options',
		options: [
			{ name: 'Uploaded Media ID', value: 'id' },
			{ name: 'Link', value: 'link' },
		],
		default: 'id',
		displayOptions: only(['sendMessage'], { messageType: MEDIA_TYPES }),
	},
	{
		displayName: 'Media ID',
		name: 'mediaId',
		type: 'string',
		default: '',
		required: true,
		description: 'An ID from the Upload Media operation',
		displayOptions: only(['sendMessage'], { messageType: MEDIA_TYPES, mediaSource: ['id'] }),
	},
	{
		displayName: 'Link',
		name: 'mediaLink',
		type: 'string',
		default: '',
		required: true,
		placeholder: 'https://example.com/invoice.pdf',
		displayOptions: only(['sendMessage'], { messageType: MEDIA_TYPES, mediaSource: ['link'] }),
	},
	{
		displayName: 'Caption',
		name: 'caption',
		type: 'string',
		default: '',
		displayOptions: only(['sendMessage'], { messageType: ['image', 'video', 'document'] }),
	},
	{
		displayName: 'File Name',
		name: 'filename',
		type: 'string',
		default: '',
		displayOptions: only(['sendMessage'], { messageType: ['document'] }),
	},
	{
		displayName: 'Interactive (JSON)',
		name: 'interactive',
		type: 'json',
		default:
			'{\n  "type": "button",\n  "body": {"text": "Pick one"},\n  "action": {"buttons": [{"type": "reply", "reply": {"id": "yes", "title": "Yes"}}]}\n}',
		description: "Meta's `interactive` object: reply buttons, a list, a CTA URL, a Flow, …",
		displayOptions: only(['sendMessage'], { messageType: ['interactive'] }),
	},
	{
		displayName: 'Latitude',
		name: 'latitude',
		type: 'number',
		typeOptions: { numberPrecision: 6 },
		default: 0,
		displayOptions: only(['sendMessage'], { messageType: ['location'] }),
	},
	{
		displayName: 'Longitude',
		name: 'longitude',
		type: 'number',
		typeOptions: { numberPrecision: 6 },
		default: 0,
		displayOptions: only(['sendMessage'], { messageType: ['location'] }),
	},
	{
		displayName: 'Place Name',
		name: 'locationName',
		type: 'string',
		default: '',
		displayOptions: only(['sendMessage'], { messageType: ['location'] }),
	},
	{
		displayName: 'Address',
		name: 'locationAddress',
		type: 'string',
		default: '',
		displayOptions: only(['sendMessage'], { messageType: ['location'] }),
	},
	{
		displayName: 'Message ID to React To',
		name: 'reactionMessageId',
		type: 'string',
		default: '',
		required: true,
		placeholder: 'wamid.…',
		displayOptions: only(['sendMessage'], { messageType: ['reaction'] }),
	},
	{
		displayName: 'Emoji',
		name: 'emoji',
		type: 'string',
		default: '👍',
		description: 'The reaction; empty removes an earlier one',
		displayOptions: only(['sendMessage'], { messageType: ['reaction'] }),
	},
	{
		displayName: 'Message (JSON)',
		name: 'messageJson',
		type: 'json',
		default: '{\n  "type": "text",\n  "text": {"body": "Hello"}\n}',
		description:
			"Meta's message object without `messaging_product`; the To field fills `to` (or `recipient`, for a business-scoped user ID) when the object has neither",
		displayOptions: only(['sendMessage'], { messageType: ['json'] }),
	},
	{
		displayName: 'Options',
		name: 'sendOptions',
		type: 'collection',
		placeholder: 'Add option',
		default: {},
		displayOptions: only(['sendMessage']),
		options: [
			{
				displayName: 'Reply To Message ID',
				name: 'replyTo',
				type: 'string',
				default: '',
				placeholder: 'wamid.…',
				description: 'Send as a reply quoting this message',
			},
			{
				displayName: 'Require Open Window',
				name: 'requireOpenWindow',
				type: 'boolean',
				default: false,
				description:
					'Whether to refuse a free-form message when the 24-hour window with the user is not open (templates are always sent)',
			},
		],
	},
];

export class Wabridge implements INodeType {
	description: INodeTypeDescription = {
		displayName: 'wabridge',
		name: 'wabridge',
		icon: { light: 'file:wabridge.svg', dark: 'file:wabridge.dark.svg' },
		group: ['output'],
		version: 1,
		subtitle: '={{$parameter["operation"]}}',
		description: 'Send WhatsApp messages and more through a wabridge gateway',
		defaults: { name: 'wabridge' },
		inputs: [NodeConnectionTypes.Main],
		outputs: [NodeConnectionTypes.Main],
		usableAsTool: true,
		credentials: [{ name: 'wabridgeApi', required: true }],
		properties: [
			{
				displayName: 'Operation',
				name: 'operation',
				type: 'options',
				noDataExpression: true,
				options: [
					{ name: 'Download Media', value: 'downloadMedia', action: 'Download an inbound media file' },
					{ name: 'Get 24-Hour Window', value: 'getWindow', action: 'Get the 24 hour window with a user' },
					{ name: 'Get Message Status', value: 'getMessageStatus', action: 'Get the status history of a sent message' },
					{ name: 'List Phone Numbers', value: 'listPhoneNumbers', action: 'List the phone numbers of a business account' },
					{ name: 'List Templates', value: 'listTemplates', action: 'List the message templates of a business account' },
					{ name: 'Mark Read', value: 'markRead', action: 'Mark a message read' },
					{ name: 'Send Message', value: 'sendMessage', action: 'Send a message' },
					{ name: 'Upload Media', value: 'uploadMedia', action: 'Upload a media file' },
				],
				default: 'sendMessage',
			},
			{
				displayName: 'Phone Number Name or ID',
				name: 'phoneNumberId',
				type: 'options',
				typeOptions: { loadOptionsMethod: 'getPhoneNumbers' },
				default: '',
				required: true,
				description:
					'The sender phone number. Choose from the list, or specify an ID using an <a href="https://docs.n8n.io/code/expressions/">expression</a>.',
				displayOptions: only(['sendMessage', 'markRead', 'getWindow', 'uploadMedia']),
			},
			{
				displayName: 'WABA Name or ID',
				name: 'wabaId',
				type: 'options',
				typeOptions: { loadOptionsMethod: 'getWabas' },
				default: '',
				required: true,
				description:
					'The WhatsApp Business Account. Choose from the list, or specify an ID using an <a href="https://docs.n8n.io/code/expressions/">expression</a>.',
				displayOptions: only(['listTemplates', 'listPhoneNumbers']),
			},
			...messageFields,
			{
				displayName: 'Message ID',
				name: 'messageId',
				type: 'string',
				default: '',
				required: true,
				placeholder: 'wamid.…',
				displayOptions: only(['markRead', 'getMessageStatus']),
			},
			{
				displayName: 'Show Typing Indicator',
				name: 'typingIndicator',
				type: 'boolean',
				default: false,
				description: 'Whether the user sees "typing…" until the next message (up to 25 seconds)',
				displayOptions: only(['markRead']),
			},
			{
				displayName: 'User',
				name: 'user',
				type: 'string',
				default: '',
				required: true,
				placeholder: '+420 777 123 456',
				description: "The user's phone number or business-scoped user ID",
				displayOptions: only(['getWindow']),
			},
			{
				displayName: 'Input Binary Field',
				name: 'binaryPropertyName',
				type: 'string',
				default: 'data',
				required: true,
				description: 'The input binary field holding the file to upload',
				displayOptions: only(['uploadMedia']),
			},
			{
				displayName: 'Media ID',
				name: 'downloadMediaId',
				type: 'string',
				default: '',
				required: true,
				description: "The media ID from an inbound message (its image, audio or document object's ID)",
				displayOptions: only(['downloadMedia']),
			},
			{
				displayName: 'Sender Phone Number ID',
				name: 'downloadPhoneNumberId',
				type: 'string',
				default: '',
				description:
					'Only for media wabridge did not receive in a webhook: the phone number ID it was sent to',
				displayOptions: only(['downloadMedia']),
			},
			{
				displayName: 'Put Output File in Field',
				name: 'outputBinaryPropertyName',
				type: 'string',
				default: 'data',
				required: true,
				displayOptions: only(['downloadMedia']),
			},
		],
	};

	methods = {
		loadOptions: {
			getWabas: wabaOptions,
			getPhoneNumbers: phoneNumberOptions,
		},
	};

	async execute(this: IExecuteFunctions): Promise<INodeExecutionData[][]> {
		const items = this.getInputData();
		const out: INodeExecutionData[] = [];
		const keepGoing = this.continueOnFail();
		for (let i = 0; i < items.length; i++) {
			const operation = this.getNodeParameter('operation', i) as Operation;
			if (!keepGoing) {
				// Errors are NodeApiError (wabridge's refusal) or NodeOperationError; they stop the run.
				const produced = await run.call(this, operation, i, items[i]);
				for (const item of produced) out.push({ ...item, pairedItem: { item: i } });
				continue;
			}
			try {
				const produced = await run.call(this, operation, i, items[i]);
				for (const item of produced) out.push({ ...item, pairedItem: { item: i } });
			} catch (error) {
				const { message, description } = error as { message: string; description?: string };
				const json: IDataObject = { error: message };
				if (description) json.hint = description;
				out.push({ json, pairedItem: { item: i } });
			}
		}
		return [out];
	}
}

async function run(
	this: IExecuteFunctions,
	operation: Operation,
	i: number,
	item: INodeExecutionData,
): Promise<INodeExecutionData[]> {
	const param = (name: string, fallback?: unknown) => this.getNodeParameter(name, i, fallback);
	const phone = () => seg(param('phoneNumberId'));
	switch (operation) {
		case 'sendMessage': {
			const message = buildMessage.call(this, i);
			const options = param('sendOptions', {}) as IDataObject;
			const qs: IDataObject = {};
			if (options.requireOpenWindow === true) qs.requireOpenWindow = 'true';
			const answer = await wabridgeJson.call(
				this,
				'POST',
				`/api/v1/phone-numbers/${phone()}/messages`,
				{ body: message, qs },
			);
			return [{ json: answer }];
		}
		case 'markRead': {
			const body = { typingIndicator: param('typingIndicator', false) === true };
			const answer = await wabridgeJson.call(
				this,
				'POST',
				`/api/v1/phone-numbers/${phone()}/messages/${seg(param('messageId'))}/read`,
				{ body },
			);
			return [{ json: answer }];
		}
		case 'getMessageStatus':
			return [
				{ json: await wabridgeJson.call(this, 'GET', `/api/v1/messages/${seg(param('messageId'))}`) },
			];
		case 'getWindow':
			return [
				{
					json: await wabridgeJson.call(
						this,
						'GET',
						`/api/v1/phone-numbers/${phone()}/windows/${seg(param('user'))}`,
					),
				},
			];
		case 'listTemplates': {
			const answer = await wabridgeJson.call(
				this,
				'GET',
				`/api/v1/business-accounts/${seg(param('wabaId'))}/templates`,
			);
			return ((answer.templates as IDataObject[] | undefined) ?? []).map((json) => ({ json }));
		}
		case 'listPhoneNumbers': {
			const answer = await wabridgeJson.call(
				this,
				'GET',
				`/api/v1/business-accounts/${seg(param('wabaId'))}/phone-numbers`,
			);
			return ((answer.phoneNumbers as IDataObject[] | undefined) ?? []).map((json) => ({ json }));
		}
		case 'uploadMedia': {
			const field = String(param('binaryPropertyName', 'data'));
			const binary = this.helpers.assertBinaryData(i, field);
			const data = await this.helpers.getBinaryDataBuffer(i, field);
			const qs: IDataObject = {};
			if (binary.fileName) qs.filename = binary.fileName;
			const answer = await wabridgeJson.call(
				this,
				'POST',
				`/api/v1/phone-numbers/${phone()}/media`,
				{ raw: { data, contentType: binary.mimeType || 'application/octet-stream' }, qs },
			);
			return [{ json: answer }];
		}
		case 'downloadMedia': {
			const mediaId = seg(param('downloadMediaId'));
			const phoneNumberId = String(param('downloadPhoneNumberId', '')).trim();
			const answer = await wabridgeCall.call(this, 'GET', `/api/v1/media/${mediaId}`, {
				qs: phoneNumberId ? { phoneNumberId } : undefined,
			});
			const type = String(answer.headers['content-type'] ?? 'application/octet-stream');
			const file = await this.helpers.prepareBinaryData(answer.bytes, undefined, type);
			const field = String(param('outputBinaryPropertyName', 'data'));
			return [
				{
					json: { ...item.json, mediaId: decodeURIComponent(mediaId), mimeType: type, size: answer.bytes.length },
					binary: { ...(item.binary ?? {}), [field]: file },
				},
			];
		}
		default:
			throw new NodeOperationError(this.getNode(), `Unknown operation ${String(operation)}`);
	}
}

function json(this: IExecuteFunctions, name: string, i: number): unknown {
	const value = this.getNodeParameter(name, i);
	if (typeof value !== 'string') return value;
	try {
		return JSON.parse(value);
	} catch (error) {
		throw new NodeOperationError(this.getNode(), `${name} is not valid JSON: ${(error as Error).message}`, {
			itemIndex: i,
		});
	}
}

/**
 * A business-scoped user ID (or parent BSUID) as wabridge checks one
 * (src/domain/recipient.rs): a two-letter country code, a dot, an opaque id.
 */
function isUserId(value: string): boolean {
	return value.length <= 128 && /^[A-Z]{2}\.[A-Za-z0-9._-]+$/.test(value);
}

/** Meta's message object for the chosen type. */
function buildMessage(this: IExecuteFunctions, i: number): IDataObject {
	const param = (name: string, fallback?: unknown) => this.getNodeParameter(name, i, fallback);
	const type = String(param('messageType'));
	const to = String(param('to', '')).trim();
	let message: IDataObject;
	switch (type) {
		case 'text':
			message = { type, text: { body: String(param('text')), preview_url: param('previewUrl', false) === true } };
			break;
		case 'template': {
			const components = json.call(this, 'components', i);
			const template: IDataObject = {
				name: String(param('templateName')).trim(),
				language: { code: String(param('languageCode')).trim() },
			};
			if (Array.isArray(components) && components.length > 0) template.components = components;
			message = { type, template };
			break;
		}
		case 'image':
		case 'video':
		case 'audio':
		case 'document':
		case 'sticker': {
			const media: IDataObject =
				param('mediaSource', 'id') === 'link'
					? { link: String(param('mediaLink')).trim() }
					: { id: String(param('mediaId')).trim() };
			const caption = ['image', 'video', 'document'].includes(type) ? String(param('caption', '')) : '';
			if (caption) media.caption = caption;
			const filename = type === 'document' ? String(param('filename', '')) : '';
			if (filename) media.filename = filename;
			message = { type, [type]: media };
			break;
		}
		case 'interactive':
			message = { type, interactive: json.call(this, 'interactive', i) as IDataObject };
			break;
		case 'location': {
			const location: IDataObject = {
				latitude: Number(param('latitude')),
				longitude: Number(param('longitude')),
			};
			const name = String(param('locationName', ''));
			const address = String(param('locationAddress', ''));
			if (name) location.name = name;
			if (address) location.address = address;
			message = { type, location };
			break;
		}
		case 'reaction':
			message = {
				type,
				reaction: { message_id: String(param('reactionMessageId')).trim(), emoji: String(param('emoji', '')) },
			};
			break;
		case 'json': {
			const value = json.call(this, 'messageJson', i);
			if (!value || typeof value !== 'object' || Array.isArray(value)) {
				throw new NodeOperationError(this.getNode(), 'The message must be a JSON object', { itemIndex: i });
			}
			message = { ...(value as IDataObject) };
			break;
		}
		default:
			throw new NodeOperationError(this.getNode(), `Unknown message type ${type}`, { itemIndex: i });
	}
	if (to && message.to === undefined && message.recipient === undefined) {
		// wabridge takes a phone number in `to` and a BSUID in `recipient` (CONTRACT §4).
		if (isUserId(to)) message.recipient = to;
		else message.to = to;
	}
	if (message.to === undefined && message.recipient === undefined) {
		throw new NodeOperationError(this.getNode(), 'Give the recipient (To)', { itemIndex: i });
	}
	const replyTo = String((param('sendOptions', {}) as IDataObject).replyTo ?? '').trim();
	if (replyTo) message.context = { message_id: replyTo };
	return message;
}
